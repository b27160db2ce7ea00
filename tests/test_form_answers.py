"""Every form gets a true answer in time, on both platforms, over real HTTP.

Teams: two people sending one channel card raise two requests; only the same person's same
submission is "already raised". A stalled database gets NOT CONFIRMED with FALLBACK_CONTACT
before Slack (3 s) or Teams gives up, for the request, outcome and cancel forms alike, and the
change still lands afterwards. Whatever else goes wrong, the person is told how to reach the
team instead of getting an error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from handlers.slack.forms import REQUEST_FORM
from storage.database import Database
from tests.support.builders import FILLED_FORM, make_services
from tests.support.clock import FrozenClock
from tests.support.databases import stalled
from tests.support.fake_microsoft import FakeMicrosoft
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import (
    cancel_submission,
    request_form,
    slack_bot,
    view_submission,
)
from tests.support.teams_activities import (
    ALEX,
    TeamsBot,
    activity,
    execute,
    outreach_teams_bot,
    person,
)
from tests.support.teams_activities import NURSE as WENDY
from tests.support.waiting import eventually

BEN = person("Ben Bedside", "0b0b0b0b-0000-4000-8000-000000000004")
FALLBACK = "Bleep the outreach team directly"


@pytest.fixture
def teams(db: Database, clock: FrozenClock, ms: FakeMicrosoft) -> Iterator[TeamsBot]:
    with outreach_teams_bot(db, clock, ms) as bot:
        yield bot


def send(bot: TeamsBot, who, verb: str, personal: Any = False, **data: object) -> dict:
    response = bot.post(execute(bot.ms, who, verb, data, personal=personal))
    assert response.status_code == 200
    return response.json()


def said(answer: dict) -> str:
    return json.dumps(answer["value"])


def stored(db: Database) -> list[tuple[str, str]]:
    with db.unit_of_work() as uow:
        return [(r.ward, r.raised_by) for r in uow.reviews.open_reviews()]


def test_two_nurses_sending_one_channel_card_raise_two_requests(
    teams: TeamsBot, db: Database
) -> None:
    card = "the-channel-card"
    first = send(teams, WENDY, "raise", rr_form=card, **FILLED_FORM)
    second = send(teams, BEN, "raise", rr_form=card, **{**FILLED_FORM, "ward": "Ward 9"})
    assert "RR-0001 raised" in said(first) and "RR-0002 raised" in said(second)
    # Teams retrying Wendy's own submission finds her request and says so, not "raised".
    again = send(teams, WENDY, "raise", rr_form=card, **FILLED_FORM)
    assert "Already raised as RR-0001" in said(again) and "RR-0001 raised" not in said(again)
    # Wendy sending other details from the same card is a new request, not lost.
    other = send(teams, WENDY, "raise", rr_form=card, **{**FILLED_FORM, "bed": "14"})
    assert "RR-0003 raised" in said(other)
    assert sorted(ward for ward, _ in stored(db)) == ["Ward 7", "Ward 7", "Ward 9"]


def test_a_stalled_database_gets_not_confirmed_from_the_teams_form_in_time(
    teams: TeamsBot, db: Database
) -> None:
    with stalled(db):
        started = time.perf_counter()
        answer = send(teams, WENDY, "raise", personal=True, rr_form="f1", **FILLED_FORM)
        waited = time.perf_counter() - started
    assert waited < 3.0, f"answered after {waited:.2f} s"
    assert "NOT CONFIRMED" in said(answer) and FALLBACK in said(answer)
    assert "raised" not in said(answer)
    eventually(lambda: len(stored(db)) == 1)  # the outreach team still gets it


def test_a_stalled_database_gets_not_confirmed_from_teams_outcome_and_cancel(
    teams: TeamsBot, db: Database
) -> None:
    send(teams, WENDY, "raise", personal=True, rr_form="f1", **FILLED_FORM)
    for verb, data in (
        ("record_outcome", {"outcome": "no_change", "note": "Obs stable"}),
        ("cancel", {"reason": "Raised for the wrong bed"}),
    ):
        with stalled(db):
            started = time.perf_counter()
            answer = send(teams, ALEX, verb, review=1, **data)
            assert time.perf_counter() - started < 3.0
        assert "NOT CONFIRMED" in said(answer) and FALLBACK in said(answer)
        eventually(lambda: stored(db) == [])


def test_a_malformed_press_or_odd_digits_get_an_answer_not_an_error(teams: TeamsBot) -> None:
    odd = send(teams, ALEX, "acknowledge", review=[1])
    assert FALLBACK in said(odd)
    superscript = send(teams, WENDY, "raise", rr_form="f2", **{**FILLED_FORM, "news2": "²"})
    assert "NEWS2" in said(superscript) or FALLBACK in said(superscript)
    submitted = activity(teams.ms, ALEX, value={"rr_verb": "attend", "review": [1]})
    assert teams.post(submitted).status_code == 200
    assert FALLBACK in json.dumps(teams.ms.posts_to(f"a:personal-{ALEX.teams_id}")[-1].body)


def test_slack_says_already_raised_and_not_confirmed_from_the_cancel_form(
    db: Database, clock: FrozenClock
) -> None:
    with FakeSlack() as fake, slack_bot(make_services(db, clock), fake) as bot:
        nurse = "U0WARDNURSE"
        submission = view_submission(REQUEST_FORM, request_form(), user_id=nurse)
        assert "RR-0001 raised" in json.dumps(bot.post(submission).json())
        again = json.dumps(bot.post(submission).json())  # the same view, sent again
        assert "already raised as RR-0001" in again and "RR-0001 raised" not in again
        cancel = cancel_submission("Raised for the wrong bed", user_id=nurse)
        with stalled(db):
            started = time.perf_counter()
            answer = json.dumps(bot.post(cancel).json())
            assert time.perf_counter() - started < 3.0
        assert "NOT CONFIRMED" in answer and FALLBACK in answer
        eventually(lambda: stored(db) == [])


def test_teams_outcome_and_cancel_forms_are_checked_like_slacks(
    teams: TeamsBot, db: Database
) -> None:
    send(teams, WENDY, "raise", personal=True, rr_form="f1", **FILLED_FORM)
    empty = send(teams, WENDY, "cancel", review=1, reason="  ")
    assert "Say why it is being cancelled." in said(empty)
    long_note = send(teams, ALEX, "record_outcome", review=1, outcome="no_change", note="x" * 600)
    assert "under 500 characters" in said(long_note)
    assert len(stored(db)) == 1  # still open: nothing was recorded
