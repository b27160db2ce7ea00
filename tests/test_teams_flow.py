"""A rapid review through Microsoft Teams, over real HTTP, on SQLite and PostgreSQL.

The real adapter (JWT check, Adaptive Cards, services) runs behind the real Starlette/uvicorn
server; Microsoft (token issuer, Entra token endpoint, Bot Connector) is FakeMicrosoft on a
loopback port; every activity carries a JWT signed as the Bot Framework signs them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.teams import activities
from reviews import service
from reviews.context import Actor
from storage.database import Database
from tests.support.builders import FILLED_FORM, make_services, request
from tests.support.clock import FrozenClock
from tests.support.fake_microsoft import TENANT, FakeMicrosoft
from tests.support.tcp_proxy import TcpProxy
from tests.support.teams_activities import (
    ALEX,
    NURSE,
    OUTREACH,
    TEAMS_ROUTE,
    TeamsBot,
    activity,
    card_of,
    execute,
    outreach_teams_bot,
    person,
    teams_bot,
)

STRANGER = person("Pat Porter", "5e5e5e5e-0000-4000-8000-000000000003")
FORM = FILLED_FORM


@pytest.fixture
def bot(db: Database, clock: FrozenClock, ms: FakeMicrosoft) -> Iterator[TeamsBot]:
    with outreach_teams_bot(db, clock, ms) as bot:
        yield bot


def titles(card: dict) -> list[str]:
    return [a["title"] for a in card.get("actions", [])]


def press(bot: TeamsBot, who, verb: str, personal: bool = False, **data: str) -> dict:
    response = bot.post(execute(bot.ms, who, verb, {"review": 1, **data}, personal=personal))
    assert response.status_code == 200
    return response.json()


def state_of(bot: TeamsBot) -> str:
    with bot.services.db.unit_of_work() as uow:
        review = uow.reviews.get(1)
    assert review is not None
    return review.state


def test_form_raise_acknowledge_attend_and_outcome(bot: TeamsBot, ms: FakeMicrosoft) -> None:
    # The nurse types "rapidreview" in her personal chat with the bot: the form comes back.
    assert bot.post(activity(ms, NURSE, text="rapidreview")).status_code == 200
    [reply] = ms.posts_to(f"a:personal-{NURSE.teams_id}")
    form = card_of(reply.body)
    [raise_button] = form["actions"]
    assert raise_button["type"] == "Action.Execute" and raise_button["verb"] == "raise"
    assert raise_button["fallback"]["type"] == "Action.Submit"
    form_id = raise_button["data"]["rr_form"]

    # A bad submission comes back as the form, with what to fix beside the fields.
    answer = press(
        bot,
        NURSE,
        "raise",
        personal=True,
        rr_form=form_id,
        **{**FORM, "ward": "", "nhs_number": "9990000019"},
    )
    shown = json.dumps(answer["value"])
    assert answer["type"] == "application/vnd.microsoft.card.adaptive"
    assert "Enter the ward." in shown and "not a valid NHS number" in shown
    # A good one is raised once, however often Teams retries it.
    answer = press(bot, NURSE, "raise", personal=True, rr_form=form_id, **FORM)
    assert "RR-0001 raised" in json.dumps(answer["value"])
    again = press(bot, NURSE, "raise", personal=True, rr_form=form_id, **FORM)
    assert "Already raised as RR-0001" in json.dumps(again["value"])
    with bot.services.db.unit_of_work() as uow:
        assert uow.reviews.count_open() == 1

    bot.drain()
    [posted] = ms.posts_to(OUTREACH)
    card = card_of(posted.body)
    shown = json.dumps(card)
    assert "Ward 7" in shown and "***0018" in shown
    assert "9990000018" not in shown and "07700 900123" not in shown
    assert titles(card) == ["Acknowledge", "Attending", "Record outcome", "Cancel"]
    card_id = _activity_id(bot)
    # Level 0 pinged Alex in a 1:1 chat the bot opened with his Entra object id.
    assert any(
        c.path == "/v3/conversations"
        and c.body["members"] == [{"id": ALEX.aad_object_id}]
        and c.body["tenantId"] == TENANT
        for c in ms.connector_calls("POST")
    )
    assert ms.posts_to(f"a:personal-{ALEX.aad_object_id}")

    # Someone not on the rota is told why, privately; nothing changes.
    refused = press(bot, STRANGER, "acknowledge")
    assert refused["type"] == "application/vnd.microsoft.activity.message"
    assert "Only the outreach rota's staff" in refused["value"]
    assert state_of(bot) == "raised"

    # Alex acknowledges: his card refreshes at once; everyone's refreshes through the outbox.
    started = time.perf_counter()
    answer = press(bot, ALEX, "acknowledge")
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(f"Acknowledge (Action.Execute) answered over HTTP in {elapsed_ms:.0f} ms")
    assert elapsed_ms < 5000  # Teams shows an error if the invoke is not answered in time
    assert "Acknowledged by Alex Carter" in json.dumps(answer["value"])
    assert titles(answer["value"]) == ["Attending", "Record outcome", "Cancel"]
    again = press(bot, ALEX, "acknowledge")
    assert "already acknowledged" in again["value"]
    bot.drain()
    [update] = ms.connector_calls("PUT")
    assert update.path == f"/v3/conversations/{OUTREACH}/activities/{card_id}"
    assert "Acknowledged by Alex Carter" in json.dumps(update.body)
    [line] = ms.posts_to(f"{OUTREACH};messageid={card_id}")
    assert "Acknowledged by Alex Carter" in line.said
    told = ms.posts_to(f"a:personal-{NURSE.teams_id}")[-1]  # her stored personal chat
    assert "Your request RR-0001" in told.said

    assert "Alex Carter attending" in json.dumps(press(bot, ALEX, "attend")["value"])
    no_place = press(bot, ALEX, "record_outcome", outcome="transfer")
    assert "Say where the patient was transferred" in no_place["value"]
    closed = press(bot, ALEX, "record_outcome", outcome="transfer", destination="ICU")
    assert "Transfer to a higher level of care (ICU)" in json.dumps(closed["value"])
    assert titles(closed["value"]) == []
    bot.drain()
    assert len(ms.connector_calls("PUT")) == 3
    assert len(ms.posts_to(f"{OUTREACH};messageid={card_id}")) == 3
    assert state_of(bot) == "closed"


def _activity_id(bot: TeamsBot) -> str:
    with bot.services.db.unit_of_work() as uow:
        card = uow.outbox.card(1, "teams", OUTREACH)
    assert card is not None
    return card.message_id


def test_channel_mention_open_rota_and_help(bot: TeamsBot, ms: FakeMicrosoft) -> None:
    text = "<at>rapidreview</at> open"
    assert bot.post(activity(ms, NURSE, personal=False, text=text)).status_code == 200
    [reply] = ms.posts_to(OUTREACH)
    assert reply.said == "No open requests." and reply.body["replyToId"]
    bot.post(activity(ms, NURSE, personal=False, text="<at>rapidreview</at> rota"))
    assert "Alex Carter" in ms.posts_to(OUTREACH)[-1].said
    bot.post(activity(ms, NURSE, personal=False, text="<at>rapidreview</at> what?"))
    assert "Rapid review" in ms.posts_to(OUTREACH)[-1].said


def test_a_request_raised_in_slack_is_open_in_teams(bot: TeamsBot, ms: FakeMicrosoft) -> None:
    slack_nurse = Actor(platform="slack", user_id="U0WARDNURSE", name="Ward Nurse")
    service.raise_review(services=bot.services, request=request(), by=slack_nurse)
    bot.post(activity(ms, ALEX, text="open"))
    reply = ms.posts_to(f"a:personal-{ALEX.teams_id}")[-1].said
    assert "RR-0001" in reply and "Ward 7 bed 12" in reply and "9990000018" not in reply


def test_submit_fallback_acknowledges_and_answers(bot: TeamsBot, ms: FakeMicrosoft) -> None:
    press(bot, NURSE, "raise", personal=True, rr_form="f1", **FORM)
    value = {"rr_verb": "acknowledge", "review": 1}
    assert bot.post(activity(ms, ALEX, personal=True, value=value)).status_code == 200
    assert state_of(bot) == "acknowledged"
    reply = ms.posts_to(f"a:personal-{ALEX.teams_id}")[-1]
    assert "Acknowledged by Alex Carter" in json.dumps(reply.body)


def test_submit_fallback_refusal_in_a_channel_is_told_privately(
    bot: TeamsBot, ms: FakeMicrosoft
) -> None:
    press(bot, NURSE, "raise", personal=True, rr_form="f1", **FORM)
    bot.drain()
    in_channel = len(ms.posts_to(OUTREACH))
    value = {"rr_verb": "acknowledge", "review": 1}
    assert bot.post(activity(ms, STRANGER, personal=False, value=value)).status_code == 200
    bot.drain()
    assert state_of(bot) == "raised" and len(ms.posts_to(OUTREACH)) == in_channel
    [told] = ms.posts_to(f"a:personal-{STRANGER.teams_id}")  # opened with the 29: id
    assert "Only the outreach rota's staff" in told.said


def test_conversation_reference_is_stored_once(bot: TeamsBot, ms: FakeMicrosoft) -> None:
    bot.post(activity(ms, ALEX, text="help"))
    bot.post(activity(ms, ALEX, personal=False, text="<at>rapidreview</at> help"))
    with bot.services.db.unit_of_work() as uow:
        staff = uow.rota.staff_by_platform_id("teams", ALEX.aad_object_id)
    assert staff is not None
    reference = json.loads(staff.teams_conversation or "{}")
    assert reference["conversationId"] == f"a:personal-{ALEX.teams_id}"
    assert reference["userId"] == ALEX.teams_id and reference["tenantId"] == TENANT


def test_nothing_recorded_when_the_database_is_down(tmp_path: Path, clock: FrozenClock) -> None:
    broken = Database("postgresql+psycopg://postgres@127.0.0.1:9/nowhere")
    with (
        FakeMicrosoft(tmp_path) as ms,
        teams_bot(make_services(broken, clock, routes=(TEAMS_ROUTE,)), ms) as bot,
    ):
        answer = press(bot, NURSE, "raise", personal=True, rr_form="f2", **FORM)
    shown = json.dumps(answer["value"])
    assert "NOTHING WAS RECORDED" in shown and "Bleep the outreach team directly" in shown
    broken.dispose()


def test_a_form_with_mistakes_in_a_channel_never_shows_the_identifiers_again(
    bot: TeamsBot, ms: FakeMicrosoft
) -> None:
    # Execute in a channel, and the Submit fallback, which answers in the channel itself.
    mistaken = {**FORM, "ward": ""}
    answer = press(bot, NURSE, "raise", personal=False, rr_form="f9", **mistaken)
    shown = json.dumps(answer["value"])
    assert "Enter the ward." in shown
    assert "9990000018" not in shown and "07700 900123" not in shown
    value = {"rr_verb": "raise", "rr_form": "f10", **mistaken}
    assert bot.post(activity(ms, NURSE, personal=False, value=value)).status_code == 200
    posted = json.dumps([p.body for p in ms.posts_to(OUTREACH)])
    assert "Enter the ward." in posted
    assert "9990000018" not in posted and "07700 900123" not in posted


def test_open_meeting_a_hung_database_is_answered_within_seconds(
    postgres_url: str, clock: FrozenClock, ms: FakeMicrosoft, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that takes connections and never answers: `open` held one of the server's
    threads for as long as it hung, and Teams got no answer at all."""
    monkeypatch.setattr(activities, "ANSWER_WAIT", 1.0)  # 10 s in service
    with TcpProxy("127.0.0.1", 5432) as proxy:
        db = Database(postgres_url.replace(":5432/", f":{proxy.port}/"))
        try:
            with teams_bot(make_services(db, clock, routes=(TEAMS_ROUTE,)), ms) as bot:
                bot.post(activity(ms, ALEX, text="open"))
                with db.reading() as one, db.reading() as another:  # two idle in the pool
                    one.reviews.count_open() + another.reviews.count_open()
                proxy.freeze()  # what takes an idle connection now waits for ever
                started = time.monotonic()
                bot.post(activity(ms, ALEX, text="open"))
                assert time.monotonic() - started < 6
                reply = ms.posts_to(f"a:personal-{ALEX.teams_id}")[-1].said
                assert reply.startswith("The bot cannot reach its database just now.")
        finally:
            proxy.thaw()
            db.dispose()
