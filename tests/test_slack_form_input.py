"""Odd input through Slack's real forms, over HTTP: mistakes come back on the fields, and
anything the bot cannot read is still answered, with FALLBACK_CONTACT."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from handlers.slack.forms import CANCEL_FORM, OUTCOME_FORM, REQUEST_FORM
from storage.database import Database
from tests.support.builders import make_services, on_rota
from tests.support.clock import FrozenClock
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import (
    SlackBot,
    SlackRequest,
    radio,
    request_form,
    sign,
    slack_bot,
    text_value,
    view_submission,
)

NURSE, ALEX = "U0WARDNURSE", "U01ALEX"
FALLBACK = "Bleep the outreach team directly"


@pytest.fixture
def bot(db: Database, clock: FrozenClock) -> Iterator[SlackBot]:
    on_rota(db, "outreach", "Alex Carter", ALEX, start=clock.now() - timedelta(hours=1))
    with FakeSlack() as fake, slack_bot(make_services(db, clock), fake) as bot:
        yield bot


def stored(db: Database) -> list[tuple[str, str | None]]:
    with db.unit_of_work() as uow:
        return [(r.state, r.cancel_reason) for r in uow.reviews.open_reviews()]


def test_a_superscript_news2_comes_back_on_its_field(bot: SlackBot, db: Database) -> None:
    form = request_form(news2="²")
    answer = bot.post(view_submission(REQUEST_FORM, form, user_id=NURSE)).json()
    assert answer == {"response_action": "errors", "errors": {"news2": answer["errors"]["news2"]}}
    assert "0 to 20" in answer["errors"]["news2"]
    assert stored(db) == []


def raise_one(bot: SlackBot) -> None:
    answer = bot.post(view_submission(REQUEST_FORM, request_form(), user_id=NURSE)).json()
    assert "RR-0001 raised" in json.dumps(answer)


def test_an_overlong_cancel_reason_comes_back_on_its_field(bot: SlackBot, db: Database) -> None:
    raise_one(bot)
    answer = bot.post(
        view_submission(
            CANCEL_FORM,
            {"reason": {"value": text_value("r" * 501)}},
            user_id=NURSE,
            view_id="V0CANCEL",
            private_metadata=json.dumps({"review": 1}),
        )
    ).json()
    assert answer["response_action"] == "errors" and set(answer["errors"]) == {"reason"}
    assert stored(db) == [("raised", None)]


@pytest.mark.parametrize("metadata", ["", "not json", '{"review": "one"}', "[1]"])
def test_an_unreadable_form_is_answered_with_the_fallback_contact(
    bot: SlackBot, db: Database, metadata: str
) -> None:
    raise_one(bot)
    answer = bot.post(
        view_submission(
            OUTCOME_FORM,
            {"outcome": {"value": radio("no_change")}, "note": {"value": text_value("")}},
            user_id=ALEX,
            view_id="V0OUTCOME",
            private_metadata=metadata,
        )
    ).json()
    said = json.dumps(answer)
    assert answer["response_action"] == "update" and "NOT recorded" in said and FALLBACK in said
    assert stored(db) == [("raised", None)]


def test_an_unknown_outcome_comes_back_on_its_field(bot: SlackBot, db: Database) -> None:
    raise_one(bot)
    answer = bot.post(
        view_submission(
            OUTCOME_FORM,
            {"outcome": {"value": radio("cured")}},
            user_id=ALEX,
            view_id="V0OUTCOME",
            private_metadata=json.dumps({"review": 1}),
        )
    ).json()
    assert answer["response_action"] == "errors" and set(answer["errors"]) == {"outcome"}
    assert stored(db) == [("raised", None)]


def test_a_request_form_without_its_values_is_answered(bot: SlackBot, db: Database) -> None:
    broken = view_submission(REQUEST_FORM, {}, user_id=NURSE)
    body = broken.body.replace("%22state%22", "%22nostate%22")
    answer = bot.post(SlackRequest(body, {**broken.headers, **sign(body)})).json()
    said = json.dumps(answer)
    assert "NOTHING WAS RECORDED" in said and FALLBACK in said
    assert stored(db) == []
