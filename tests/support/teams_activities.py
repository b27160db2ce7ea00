"""Teams' side of a conversation: activities as Teams sends them, posted with real signed JWTs.

`TeamsBot` runs the real adapter (build_teams) behind the real HTTP server, with every call to
Microsoft going to FakeMicrosoft.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests

from handlers.http import make_http_app
from handlers.teams import TeamsAdapter, build_teams
from reviews.clock import Clock
from reviews.context import Services
from reviews.notify import Route
from reviews.outbox import drain
from settings import Settings, load_settings
from storage.database import Database
from storage.tables import Shift, Staff
from tests.support.builders import make_services
from tests.support.fake_microsoft import APP_ID, APP_PASSWORD, TENANT, FakeMicrosoft
from tests.support.http import serve

OUTREACH = "19:outreach@thread.tacv2"
DIGEST = "19:digest@thread.tacv2"
TEAMS_ROUTE = Route(platform="teams", outreach_channel=OUTREACH, digest_channel=DIGEST)


def teams_environment(ms: FakeMicrosoft) -> dict[str, str]:
    """The bot's Teams settings, as environment variables, with every call to Microsoft going
    to `ms`."""
    return {
        "TEAMS_APP_ID": APP_ID,
        "TEAMS_APP_PASSWORD": APP_PASSWORD,
        "TEAMS_TENANT_ID": TENANT,
        "TEAMS_OUTREACH_CONVERSATION": OUTREACH,
        "TEAMS_DIGEST_CONVERSATION": DIGEST,
        "TEAMS_SERVICE_URL": ms.service_url,
        "TEAMS_OPENID_METADATA_URL": ms.metadata_url,
        "TEAMS_AUTHORITY": ms.authority,
    }


def teams_settings(ms: FakeMicrosoft) -> Settings:
    return load_settings(teams_environment(ms), env_file=None)


@dataclass(frozen=True)
class Person:
    name: str
    aad_object_id: str
    teams_id: str  # the 29:... id Teams gives them

    @property
    def account(self) -> dict[str, str]:
        return {"id": self.teams_id, "name": self.name, "aadObjectId": self.aad_object_id}


def person(name: str, aad_object_id: str) -> Person:
    return Person(name, aad_object_id, f"29:{aad_object_id[:8]}")


NURSE = person("Wendy Ward", "0a0a0a0a-0000-4000-8000-000000000001")
ALEX = person("Alex Carter", "a1e0a1e0-0000-4000-8000-000000000002")


def on_teams_rota(db: Database, role: str, name: str, aad: str, start: datetime) -> None:
    """Put a person on the rota by their Entra object id, as a Teams trust's rota CSV does."""
    with db.unit_of_work() as uow:
        staff = uow.rota.staff_by_platform_id("teams", aad) or uow.rota.add_staff(
            Staff(name=name, teams_user_id=aad)
        )
        assert staff.id is not None
        uow.session.add(
            Shift(
                role=role,
                staff_id=staff.id,
                start=start,
                end=start + timedelta(hours=12),
                source="test",
                imported_at=start,
            )
        )


def card_of(call_body: dict) -> dict:
    """The Adaptive Card a bot's message to Teams carries."""
    return call_body["attachments"][0]["content"]


def activity(ms: FakeMicrosoft, who: Person, *, personal: bool = True, **fields: Any) -> dict:
    """A message (or, with type=..., any activity) from `who`, in their personal chat or in the
    outreach channel."""
    conversation = (
        {"id": f"a:personal-{who.teams_id}", "conversationType": "personal", "tenantId": TENANT}
        if personal
        else {"id": OUTREACH, "conversationType": "channel", "tenantId": TENANT}
    )
    return {
        "type": "message",
        "id": uuid.uuid4().hex,
        "channelId": "msteams",
        "serviceUrl": ms.service_url,
        "from": who.account,
        "recipient": {"id": f"28:{APP_ID}", "name": "rapidreview"},
        "conversation": conversation,
        "channelData": {"tenant": {"id": TENANT}},
        **fields,
    }


def execute(ms: FakeMicrosoft, who: Person, verb: str, data: dict, **options: Any) -> dict:
    """An Action.Execute press: the adaptiveCard/action invoke Teams sends."""
    value = {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"}
    return activity(ms, who, type="invoke", name="adaptiveCard/action", value=value, **options)


@dataclass
class TeamsBot:
    services: Services
    adapter: TeamsAdapter
    ms: FakeMicrosoft
    url: str

    def post(
        self, body: dict, *, token: str | None = None, unsigned: bool = False
    ) -> requests.Response:
        """POST an activity to /api/messages over HTTP with `token`, or one signed as the Bot
        Framework signs them, or (unsigned) with no Authorization header at all."""
        if token is None and not unsigned:
            token = self.ms.token(service_url=body.get("serviceUrl"))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(f"{self.url}/api/messages", json=body, headers=headers, timeout=10)

    def drain(self) -> int:
        return drain(self.services, {"teams": self.adapter.sender})


@contextmanager
def teams_bot(services: Services, ms: FakeMicrosoft) -> Iterator[TeamsBot]:
    adapter = build_teams(services, teams_settings(ms), http_client=ms.session())
    with serve(make_http_app(services.db, list(adapter.routes))) as url:
        yield TeamsBot(services, adapter, ms, url)


@contextmanager
def outreach_teams_bot(db: Database, clock: Clock, ms: FakeMicrosoft) -> Iterator[TeamsBot]:
    """teams_bot on `db` and `clock` (Teams routes), Alex holding outreach since an hour ago."""
    on_teams_rota(db, "outreach", ALEX.name, ALEX.aad_object_id, clock.now() - timedelta(hours=1))
    with teams_bot(make_services(db, clock, routes=(TEAMS_ROUTE,)), ms) as bot:
        yield bot
