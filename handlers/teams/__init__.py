"""Microsoft Teams: the Bot Framework endpoint, Adaptive Cards and the Teams sender.

No botbuilder (it is archived): inbound tokens are checked with PyJWT, outbound tokens come
from msal, and the Bot Connector is called with `requests`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from handlers.logs import Sparing
from handlers.teams.activities import ActivityHandler
from handlers.teams.auth import (
    Forbidden,
    KeysUnavailable,
    TokenVerifier,
    Unauthorized,
    check_origin,
)
from handlers.teams.connector import Connector
from handlers.teams.roster import lookup_teams_id
from handlers.teams.sender import TeamsSender
from reviews.context import Services
from reviews.outbox import WORKERS
from settings import Settings

log = logging.getLogger(__name__)


@dataclass
class TeamsAdapter:
    routes: list[Route]
    sender: TeamsSender
    verifier: TokenVerifier
    handler: ActivityHandler
    settings: Settings

    def lookup_teams_id(self) -> Callable[[str], str | None]:
        """For a rota import: email -> Teams id from the outreach team's roster, read once on
        the first call (DeliveryError when the connector cannot give it)."""
        return lookup_teams_id(
            self.handler.connector,
            service_url=self.settings.teams_service_url,
            conversation_id=self.settings.teams_outreach_conversation,
        )


def build_teams(
    services: Services, settings: Settings, *, http_client: requests.Session | None = None
) -> TeamsAdapter:
    """The Teams endpoint and sender. `http_client` carries every call to Microsoft (keys,
    tokens, the connector); tests pass one that trusts their local issuer's certificate."""
    http = http_client or default_session(settings.ca_bundle)
    connector = Connector(
        app_id=settings.teams_app_id,
        app_password=settings.teams_app_password,
        authority=settings.teams_authority,
        http=http,
    )
    verifier = TokenVerifier(
        app_id=settings.teams_app_id, metadata_url=settings.teams_openid_metadata_url, http=http
    )
    handler = ActivityHandler(services, connector)
    sender = TeamsSender(
        connector=connector,
        services=services,
        service_url=settings.teams_service_url,
        tenant_id=settings.teams_tenant_id,
        outreach_conversation=settings.teams_outreach_conversation,
    )

    # Anyone may post to /api/messages: each kind of refusal is logged at most once a minute.
    # A token Microsoft signed for this bot but we refuse (our clock, a replay) has a line of
    # its own, apart from forgeries and from tokens signed for other bots (anyone may have one).
    forged, another_app, refused_ours, forbidden, no_keys = (Sparing(log) for _ in range(5))

    async def messages(request: Request) -> Response:
        try:
            # handlers/limits.py has already refused a body over 256 KB.
            activity = parse_activity(await request.body())
        except ValueError:
            return JSONResponse({"error": "not a JSON activity"}, status_code=400)
        authorization = request.headers.get("authorization")
        try:
            await run_in_threadpool(verifier.verify, authorization, activity)
            check_origin(activity, settings.teams_tenant_id)
        except Unauthorized as refused:
            sparing = refused_ours if refused.ours else another_app if refused.signed else forged
            sparing.log(logging.WARNING, "Teams request refused: %s", refused)
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        except Forbidden as refused:
            forbidden.log(logging.WARNING, "Teams request refused: %s", refused)
            return JSONResponse({"error": "forbidden"}, status_code=403)
        except (requests.RequestException, KeyError, ValueError, KeysUnavailable) as error:
            # We could not fetch Microsoft's keys: ask the Bot Framework to try again.
            why = str(error) if isinstance(error, KeysUnavailable) else type(error).__name__
            no_keys.log(logging.ERROR, "Teams signing keys unavailable: %s", why)
            return JSONResponse({"error": "keys unavailable"}, status_code=503)
        status, answer = await run_in_threadpool(handler.handle, activity)
        if answer is None:
            return Response(status_code=status)
        return JSONResponse(answer, status_code=status)

    routes = [Route("/api/messages", messages, methods=["POST"])]
    return TeamsAdapter(
        routes=routes, sender=sender, verifier=verifier, handler=handler, settings=settings
    )


def parse_activity(body: bytes) -> dict[str, Any]:
    """The activity in a request body. ValueError when it is not JSON (or nests too deep for the
    parser), or a part we read as an object (`from`, `conversation`, `channelData` and its
    `tenant`) is something else: Teams never sends that, and it must not become a 500."""
    try:
        activity = json.loads(body)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(activity, dict):
        raise ValueError("not an object")
    channel_data = activity.get("channelData")
    tenant = channel_data.get("tenant") if isinstance(channel_data, dict) else None
    parts = (activity.get("from"), activity.get("conversation"), channel_data, tenant)
    if any(part is not None and not isinstance(part, dict) for part in parts):
        raise ValueError("a part of the activity is not an object")
    return activity


def default_session(ca_bundle: str) -> requests.Session:
    """A requests session trusting the system's bundle, or `ca_bundle` (settings.ca_bundle).
    Its kept-alive connections are shared by the outbox's workers and the listeners at once:
    room for each (as handlers/slack/client.py)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_maxsize=2 * WORKERS)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if ca_bundle:
        session.verify = ca_bundle
    return session


__all__ = ["TeamsAdapter", "build_teams"]
