"""Teams' side of a conversation: activities as Teams sends them, posted with real signed JWTs.

`TeamsBot` runs the real adapter (build_teams) behind the real HTTP server, with every call to
Microsoft going to FakeMicrosoft.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

from handlers.http import make_http_app
from handlers.teams import TeamsAdapter, build_teams
from reviews.context import Services
from reviews.outbox import drain
from settings import Settings
from tests.support.fake_microsoft import APP_ID, APP_PASSWORD, TENANT, FakeMicrosoft
from tests.support.http import serve

OUTREACH = "19:outreach@thread.tacv2"
DIGEST = "19:digest@thread.tacv2"


def teams_settings(ms: FakeMicrosoft) -> Settings:
    return Settings(
        teams_app_id=APP_ID,
        teams_app_password=APP_PASSWORD,
        teams_tenant_id=TENANT,
        teams_outreach_conversation=OUTREACH,
        teams_digest_conversation=DIGEST,
        teams_service_url=ms.service_url,
        teams_openid_metadata_url=ms.metadata_url,
        teams_authority=ms.authority,
    )


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
