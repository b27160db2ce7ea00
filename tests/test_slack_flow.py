"""A rapid review through Slack, over real HTTP, on SQLite and PostgreSQL.

The real bolt App runs behind the real Starlette/uvicorn server; Slack's Web API is the fake
server on a loopback port; requests are signed as Slack signs them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from handlers.slack.forms import CANCEL_FORM, OUTCOME_FORM, REQUEST_FORM
from storage.database import Database
from tests.support.clock import FrozenClock
from tests.support.fake_slack import Call, FakeSlack
from tests.support.slack_requests import (
    OUTREACH_NURSE,
    SlackBot,
    button_click,
    choice,
    outreach_slack_bot,
    radio,
    request_form,
    slash_command,
    text_value,
    view_submission,
)
from tests.support.waiting import eventually

NURSE, ALEX = "U0WARDNURSE", OUTREACH_NURSE


@pytest.fixture
def bot(db: Database, clock: FrozenClock, fake: FakeSlack) -> Iterator[SlackBot]:
    with outreach_slack_bot(db, clock, fake) as bot:
        yield bot


def state_of(bot: SlackBot, review_id: int = 1) -> str | None:
    with bot.services.db.unit_of_work() as uow:
        review = uow.reviews.get(review_id)
    return review.state if review else None


def events_of(bot: SlackBot, review_id: int = 1) -> list[str]:
    with bot.services.db.unit_of_work() as uow:
        return [e.kind for e in uow.events.for_review(review_id) if e.kind != "escalated"]


def raise_one(bot: SlackBot, fake: FakeSlack, view_id: str = "V0FORM1") -> dict:
    response = bot.post(
        view_submission(REQUEST_FORM, request_form(), user_id=NURSE, view_id=view_id)
    )
    assert response.status_code == 200
    bot.drain()
    return response.json()


def click(bot: SlackBot, action: str, user_id: str, channel_id: str = "C0OUTREACH") -> None:
    response = bot.post(
        button_click(f"review_{action}", "1", user_id=user_id, channel_id=channel_id)
    )
    assert response.status_code == 200


def cards(fake: FakeSlack) -> list[Call]:
    return [
        c
        for c in fake.called("chat.postMessage")
        if c.body["channel"] == "C0OUTREACH" and "thread_ts" not in c.body
    ]


def test_request_forms_open_over_one_kept_alive_connection(bot: SlackBot, fake: FakeSlack) -> None:
    # Against real Slack each new connection is a TLS handshake before the form can open.
    forms = 4
    for number in range(forms):
        bot.post(slash_command(response_url=fake.response_url(), trigger_id=f"trig-{number}"))
        assert fake.wait_for("views.open", number + 1)[-1].answered.wait(5)
    # The bot reads Slack's answer back a moment after the fake sends it; on a loaded machine
    # the next form can open in that moment, over a second kept connection. Never one a form.
    assert len({call.connection for call in fake.called("views.open")}) <= 2


def test_a_burst_of_forms_keeps_its_connections(
    bot: SlackBot, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    # Forty people open the form at once while Slack takes 0.3 s to answer each: every call
    # holds a connection at the same moment, and each must be kept for the next form.
    fake.latency = 0.3
    forms = 40
    with ThreadPoolExecutor(forms) as pool:
        answers = list(
            pool.map(lambda n: bot.post(slash_command(trigger_id=f"burst-{n}")), range(forms))
        )
    assert all(answer.status_code == 200 for answer in answers)
    assert len(fake.wait_for("views.open", forms, timeout=10)) == forms
    discarded = [r for r in caplog.records if "Connection pool is full" in r.getMessage()]
    assert discarded == []


def test_raise_acknowledge_attend_and_record_outcome(bot: SlackBot, fake: FakeSlack) -> None:
    started = time.perf_counter()
    response = bot.post(slash_command(response_url=fake.response_url(), trigger_id="trig-9"))
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(f"slash command answered over HTTP in {elapsed_ms:.0f} ms")
    assert response.status_code == 200 and elapsed_ms < 3000
    form = fake.wait_for("views.open")[0].body
    assert form["trigger_id"] == "trig-9" and form["view"]["callback_id"] == REQUEST_FORM

    answer = raise_one(bot, fake)
    said = json.dumps(answer)
    assert answer["response_action"] == "update"
    assert "RR-0001 raised" in said and "Bleep the outreach team directly" in said
    [card] = cards(fake)
    shown = json.dumps(card.body)
    assert "Ward 7" in shown and "***0018" in shown
    assert "9990000018" not in shown and "07700 900123" not in shown
    labels = [e["text"]["text"] for e in card.body["blocks"][-1]["elements"]]
    assert labels == ["Acknowledge", "Attending", "Record outcome", "Cancel"]

    click(bot, "acknowledge", ALEX)
    eventually(lambda: state_of(bot) == "acknowledged")
    bot.drain()
    click(bot, "attend", ALEX)
    eventually(lambda: state_of(bot) == "attending")
    bot.drain()
    click(bot, "record_outcome", ALEX)
    outcome_form = fake.wait_for("views.open", 2)[1].body["view"]
    assert outcome_form["callback_id"] == OUTCOME_FORM
    answer = bot.post(
        view_submission(
            OUTCOME_FORM,
            {
                "outcome": {"value": radio("transfer")},
                "destination": {"value": choice("ICU")},
                "note": {"value": text_value("")},
            },
            user_id=ALEX,
            view_id="V0OUTCOME",
            private_metadata=outcome_form["private_metadata"],
        )
    ).json()
    assert answer["response_action"] == "update" and "RR-0001 closed" in json.dumps(answer)
    bot.drain()

    assert state_of(bot) == "closed"
    assert events_of(bot) == ["raised", "acknowledged", "attending", "closed"]
    assert len(cards(fake)) == 1, "each change updates the one card in place"
    updates = fake.called("chat.update")
    assert [u.body["ts"] for u in updates] == [cards(fake)[0].answer["ts"]] * 3
    assert updates[0].body["channel"] == "C0OUTREACH"
    assert "Transfer to a higher level of care (ICU)" in json.dumps(updates[-1].body)
    assert "actions" not in [b["type"] for b in updates[-1].body["blocks"]]
    thread = [c.body["text"] for c in fake.called("chat.postMessage") if "thread_ts" in c.body]
    assert len(thread) == 3 and thread[0].startswith("Acknowledged by Alex Carter")
    told_nurse = [
        c.body["text"] for c in fake.called("chat.postMessage") if c.body["channel"] == NURSE
    ]
    assert any("RR-0001" in text and "Closed" in text for text in told_nurse)


def test_the_raiser_cancels_with_a_reason(bot: SlackBot, fake: FakeSlack) -> None:
    raise_one(bot, fake)
    click(bot, "cancel", NURSE)
    cancel_form = fake.wait_for("views.open")[0].body["view"]
    assert cancel_form["callback_id"] == CANCEL_FORM
    answer = bot.post(
        view_submission(
            CANCEL_FORM,
            {"reason": {"value": text_value("Raised for the wrong bed")}},
            user_id=NURSE,
            view_id="V0CANCEL",
            private_metadata=cancel_form["private_metadata"],
        )
    ).json()
    assert "RR-0001 cancelled" in json.dumps(answer)
    bot.drain()
    assert state_of(bot) == "cancelled"
    assert "Raised for the wrong bed" in json.dumps(fake.called("chat.update")[-1].body)


def test_someone_off_the_rota_is_refused_privately(bot: SlackBot, fake: FakeSlack) -> None:
    raise_one(bot, fake)
    click(bot, "acknowledge", NURSE)
    [refusal] = fake.wait_for("chat.postEphemeral")
    assert refusal.body["user"] == NURSE and refusal.body["channel"] == "C0OUTREACH"
    assert "Only the outreach rota's staff" in refusal.body["text"]
    click(bot, "record_outcome", NURSE)
    assert "record outcome" in fake.wait_for("chat.postEphemeral", 2)[1].body["text"]
    assert state_of(bot) == "raised" and events_of(bot) == ["raised"]
    assert not fake.called("views.open") and not fake.called("chat.update")


def test_a_button_in_a_direct_message_answers_by_direct_message(
    bot: SlackBot, fake: FakeSlack
) -> None:
    raise_one(bot, fake)
    dm = next(c for c in fake.called("chat.postMessage") if c.body["channel"] == ALEX)
    assert dm.body["blocks"][-1]["elements"][0]["action_id"] == "review_acknowledge"
    click(bot, "acknowledge", ALEX, channel_id="D01ALEX")
    eventually(lambda: state_of(bot) == "acknowledged")
    posted = len(fake.called("chat.postMessage"))
    click(bot, "acknowledge", NURSE, channel_id="D0WARDNURSE")
    refusal = fake.wait_for("chat.postMessage", posted + 1)[-1]
    assert refusal.body["channel"] == NURSE and "Only the outreach" in refusal.body["text"]


def test_retries_and_double_clicks_change_nothing_twice(bot: SlackBot, fake: FakeSlack) -> None:
    command = slash_command(response_url=fake.response_url())
    assert bot.post(command).status_code == 200
    assert bot.post(command.retried()).status_code == 200
    submission = view_submission(REQUEST_FORM, request_form(), user_id=NURSE, view_id="V0SAME")
    first, again = bot.post(submission).json(), bot.post(submission.retried()).json()
    assert "RR-0001 raised" in json.dumps(first) and "RR-0001" in json.dumps(again)
    press = button_click("review_acknowledge", "1", user_id=ALEX)
    for request in (press, press, press.retried()):
        assert bot.post(request).status_code == 200
    eventually(lambda: len(fake.called("chat.postEphemeral")) == 2)
    assert all("already acknowledged" in c.body["text"] for c in fake.called("chat.postEphemeral"))
    bot.drain()
    with bot.services.db.unit_of_work() as uow:
        assert len(uow.reviews.open_reviews()) == 1
    assert events_of(bot) == ["raised", "acknowledged"]
    assert len(cards(fake)) == 1 and len(fake.called("chat.update")) == 1
