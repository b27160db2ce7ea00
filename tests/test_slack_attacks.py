"""The Slack check-in form when what arrives is not what the form sends, or is sent twice with
different patients: always an answer, never a lost bed. Real bolt app over real HTTP, SQLite
and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from handlers.slack.forms import REQUEST_FORM
from settings import DEFAULT_FALLBACK
from storage.database import Database
from tests.support.builders import make_services
from tests.support.clock import FrozenClock
from tests.support.fake_slack import FakeSlack
from tests.support.process import free_port
from tests.support.slack_requests import SlackBot, request_form, slack_bot, view_submission
from tests.test_checkin_slack import checkin_form, checkins, submit


@pytest.fixture
def bot(db: Database, clock: FrozenClock) -> Iterator[SlackBot]:
    with FakeSlack() as fake, slack_bot(make_services(db, clock), fake) as bot:
        yield bot


@pytest.mark.parametrize(
    "values",
    [
        {"ward": "Ward 7", "bed": ["12"]},
        {**checkin_form(), "respondent": {"value": {"selected_option": "patient"}}},
    ],
)
def test_a_check_in_form_we_cannot_read_is_answered_with_the_fallback(
    bot: SlackBot, values: dict[str, Any]
) -> None:
    answer, _ = submit(bot, values)
    said = json.dumps(answer)
    assert answer["response_action"] == "update"
    assert "NOT recorded" in said and DEFAULT_FALLBACK in said
    assert checkins(bot) == 0


def test_the_next_bed_sent_on_a_form_that_did_not_refresh_is_recorded_too(bot: SlackBot) -> None:
    # Slack lost the refreshed form (a timeout): the nurse records the next bed on the old one.
    first, _ = submit(bot, checkin_form(bed="12"))
    second, _ = submit(bot, checkin_form(bed="14", answer="better"))
    assert "bed 12" in json.dumps(first) and "bed 14" in json.dumps(second)
    assert checkins(bot) == 2
    submit(bot, checkin_form(bed="14", answer="better"))  # Slack's retry of that one
    assert checkins(bot) == 2


def test_a_request_is_recorded_while_slacks_web_api_cannot_be_reached(
    db: Database, clock: FrozenClock
) -> None:
    # Slack reaches us, we cannot reach Slack (an outbound proxy down since the bot started):
    # the request must still be recorded and escalated, and the nurse told its reference.
    unreachable = SimpleNamespace(url=f"http://127.0.0.1:{free_port()}/api/")
    with slack_bot(make_services(db, clock), unreachable) as bot:
        answer = bot.post(view_submission(REQUEST_FORM, request_form(), user_id="U0WARDNURSE"))
        assert answer.status_code == 200
        assert "RR-0001" in json.dumps(answer.json())
        with db.unit_of_work() as uow:
            assert uow.reviews.count_open() == 1


def test_a_corrected_bed_sent_on_a_form_that_did_not_close_is_not_lost(bot: SlackBot) -> None:
    # Slack timed out on the first Send; the nurse corrects the bed and sends the form again.
    first = bot.post(view_submission(REQUEST_FORM, request_form(bed="12"), user_id="U0WARDNURSE"))
    again = bot.post(view_submission(REQUEST_FORM, request_form(bed="21"), user_id="U0WARDNURSE"))
    assert "RR-0001" in first.text and "RR-0002" in again.text
    with bot.services.db.unit_of_work() as uow:
        assert uow.reviews.count_open() == 2  # the team sees both beds, and can ask
    retry = bot.post(view_submission(REQUEST_FORM, request_form(bed="21"), user_id="U0WARDNURSE"))
    assert "already raised as RR-0002" in retry.text  # Slack's own retry raises nothing new
