"""Outbound to Teams: escalation pings in 1:1 chats, retries on throttling, loud failures.

Time is a FrozenClock; the sweep and the outbox run for real against SQLite and PostgreSQL;
Microsoft is FakeMicrosoft (Entra token endpoint and Bot Connector) over HTTPS on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlmodel import col, select

from handlers.teams import build_teams
from reviews import service
from reviews.context import Actor, Services
from reviews.digest import post_digest
from reviews.escalation import sweep
from reviews.messages import Attachment, Message
from reviews.outbox import DeliveryError, OutboundItem, drain
from reviews.rota_jobs import announce_handovers
from storage.database import Database
from storage.tables import Outbox, Staff
from tests.support.builders import make_services, request
from tests.support.clock import FrozenClock
from tests.support.fake_microsoft import TENANT, FakeMicrosoft
from tests.support.teams_activities import (
    DIGEST,
    OUTREACH,
    TEAMS_ROUTE,
    TeamsBot,
    execute,
    on_teams_rota,
    person,
    teams_bot,
    teams_settings,
)

NURSE = Actor(platform="teams", user_id="0a0a0a0a-0000-4000-8000-000000000001", name="Wendy")
ALEX = person("Alex Carter", "a1e0a1e0-0000-4000-8000-000000000002")
SAM = person("Sam Patel", "5a305a30-0000-4000-8000-000000000004")


@pytest.fixture
def services(db: Database, clock: FrozenClock) -> Services:
    start = clock.now() - timedelta(hours=1)
    on_teams_rota(db, "outreach", ALEX.name, ALEX.aad_object_id, start)
    on_teams_rota(db, "outreach-backup", SAM.name, SAM.aad_object_id, start)
    return make_services(db, clock, routes=(TEAMS_ROUTE,))


@pytest.fixture
def bot(services: Services, ms: FakeMicrosoft) -> Iterator[TeamsBot]:
    with teams_bot(services, ms) as bot:
        yield bot


def rows(services: Services) -> list[Outbox]:
    with services.db.unit_of_work() as uow:
        return list(uow.session.exec(select(Outbox).order_by(col(Outbox.id))).all())


def test_escalation_dm_reaches_the_teams_user_who_can_acknowledge_from_it(
    bot: TeamsBot, ms: FakeMicrosoft, clock: FrozenClock, services: Services
) -> None:
    service.raise_review(services=services, request=request(), by=NURSE)
    bot.drain()
    [created] = [c for c in ms.connector_calls("POST") if c.path == "/v3/conversations"]
    assert created.body["members"] == [{"id": ALEX.aad_object_id}]
    assert created.body["bot"]["id"].startswith("28:") and created.body["tenantId"] == TENANT
    [ping] = ms.posts_to(f"a:personal-{ALEX.aad_object_id}")
    assert "RR-0001" in ping.said and "9990000018" not in json.dumps(ping.body)

    # Nobody acknowledges: five minutes later level 1 pings Alex again and Sam.
    clock.advance(minutes=5)
    assert sweep(services) == 1
    bot.drain()
    assert len(ms.posts_to(f"a:personal-{ALEX.aad_object_id}")) == 2
    [sam_ping] = ms.posts_to(f"a:personal-{SAM.aad_object_id}")
    card = sam_ping.body["attachments"][0]["content"]
    [acknowledge] = card["actions"]
    assert acknowledge["title"] == "Acknowledge" and acknowledge["verb"] == "acknowledge"
    # Alex's chat was opened once and remembered; only Sam's is new.
    assert len([c for c in ms.connector_calls("POST") if c.path == "/v3/conversations"]) == 2

    # Sam presses Acknowledge in the DM.
    answer = bot.post(execute(ms, SAM, "acknowledge", acknowledge["data"])).json()
    assert "Acknowledged by Sam Patel" in json.dumps(answer["value"])
    clock.advance(minutes=10)
    assert sweep(services) == 0


@pytest.mark.parametrize("status", [429, 412, 502, 504])
def test_throttling_and_gateway_errors_are_retried(
    bot: TeamsBot, ms: FakeMicrosoft, clock: FrozenClock, services: Services, status: int
) -> None:
    ms.fail_next(status, retry_after=7 if status == 429 else None, to=OUTREACH)
    service.raise_review(services=services, request=request(), by=NURSE)
    bot.drain()
    [card] = [r for r in rows(services) if r.kind == "card"]
    assert card.state == "pending" and card.attempts == 1
    wait = card.next_attempt_at - clock.now()
    assert wait == timedelta(seconds=7 if status == 429 else 1)
    assert bot.drain() == 0  # not before its time
    clock.advance(seconds=wait.total_seconds())
    bot.drain()
    assert len(ms.posts_to(OUTREACH)) == 2  # the refused try and the one that went
    with services.db.unit_of_work() as uow:
        assert uow.outbox.card(1, "teams", OUTREACH) is not None


def test_a_refused_post_fails_loudly_in_the_digest_conversation(
    bot: TeamsBot, ms: FakeMicrosoft, services: Services
) -> None:
    ms.fail_next(403, to=OUTREACH)
    service.raise_review(services=services, request=request(), by=NURSE)
    bot.drain()
    [card] = [r for r in rows(services) if r.kind == "card"]
    assert card.state == "failed" and "403" in (card.last_error or "")
    [report] = ms.posts_to(DIGEST)
    assert "could not be delivered" in report.said


def test_a_person_the_bot_cannot_reach_is_reported(ms: FakeMicrosoft, services: Services) -> None:
    with services.db.unit_of_work() as uow:
        uow.rota.add_staff(Staff(name="Old Rota Entry", teams_user_id="29:legacy-id"))
    sender = build_teams(services, teams_settings(ms), http_client=ms.session()).sender
    item = OutboundItem("direct", "29:legacy-id", Message(text="RR-0001"), None, 1)
    with pytest.raises(DeliveryError) as refused:
        sender.deliver(item)
    assert refused.value.permanent and "never talked to the bot" in str(refused.value)
    assert ms.connector_calls() == []


def test_network_failures_and_bad_credentials(ms: FakeMicrosoft, services: Services) -> None:
    item = OutboundItem("channel", OUTREACH, Message(text="hello"), None, None)
    unreachable = replace(teams_settings(ms), teams_service_url="https://127.0.0.1:9/")
    sender = build_teams(services, unreachable, http_client=ms.session()).sender
    with pytest.raises(DeliveryError) as network:
        sender.deliver(item)
    assert not network.value.permanent and "network" in str(network.value)

    wrong = replace(teams_settings(ms), teams_app_password="not-the-password")
    sender = build_teams(services, wrong, http_client=ms.session()).sender
    with pytest.raises(DeliveryError) as refused:
        sender.deliver(item)
    # An expired secret is the bot's problem, not the message's: held, not failed.
    assert refused.value.credentials and not refused.value.permanent
    assert "invalid_client" in str(refused.value)


def test_tokens_are_cached_and_the_chart_goes_inline(ms: FakeMicrosoft, services: Services) -> None:
    sender = build_teams(services, teams_settings(ms), http_client=ms.session()).sender

    chart = Attachment.of("digest.png", "Requests by hour", b"\x89PNG fake")
    for day in range(3):
        sender.deliver(
            OutboundItem(
                "channel", DIGEST, Message(f"Digest {day}", attachments=(chart,)), None, None
            )
        )
    assert ms.token_requests == 1
    body = ms.posts_to(DIGEST)[0].body
    [image] = [e for e in body["attachments"][0]["content"]["body"] if e["type"] == "Image"]
    assert image["url"].startswith("data:image/png;base64,") and image["altText"]


def test_drain_delivers_with_the_teams_sender(ms: FakeMicrosoft, services: Services) -> None:
    adapter = build_teams(services, teams_settings(ms), http_client=ms.session())
    service.raise_review(services=services, request=request(), by=NURSE)
    assert drain(services, {"teams": adapter.sender}) >= 2
    assert all(r.state == "sent" for r in rows(services))


def test_the_digest_and_its_chart_reach_the_teams_digest_channel(
    ms: FakeMicrosoft, services: Services, clock: FrozenClock
) -> None:
    service.raise_review(services=services, request=request(), by=NURSE)
    clock.advance(hours=23)
    assert post_digest(services, day=clock.now().date())
    drain(
        services,
        {"teams": build_teams(services, teams_settings(ms), http_client=ms.session()).sender},
    )
    digest, chart = ms.posts_to(DIGEST)  # the figures, then the chart on its own
    assert "Rapid review digest" in digest.said
    assert "9990000018" not in json.dumps(digest.body) + json.dumps(chart.body)
    content = chart.body["attachments"][0]["content"]
    assert any(e["type"] == "Image" for e in content["body"])


def test_a_handover_reaches_the_new_holder_in_teams(
    db: Database, clock: FrozenClock, ms: FakeMicrosoft
) -> None:
    on_teams_rota(
        db, "outreach", SAM.name, SAM.aad_object_id, clock.now() - timedelta(hours=12, minutes=5)
    )
    on_teams_rota(db, "outreach", ALEX.name, ALEX.aad_object_id, clock.now() - timedelta(minutes=5))
    services = make_services(db, clock, routes=(TEAMS_ROUTE,))
    assert announce_handovers(services) == 1
    drain(
        services,
        {"teams": build_teams(services, teams_settings(ms), http_client=ms.session()).sender},
    )
    [dm] = ms.posts_to(f"a:personal-{ALEX.aad_object_id}")
    assert "You now hold outreach" in dm.said
    assert "Handover: Alex Carter now holds outreach" in ms.posts_to(OUTREACH)[0].said
