"""Teams check-ins and requests when what arrives is odd: a card still open on another device,
a card's data that is not what the card sends, a ward or bed of 10 KB, a body that is not an
activity. Always an answer, never a 500 and never a lost bed. Real adapter over real HTTP (real
JWTs), SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from settings import DEFAULT_FALLBACK
from storage.database import Database
from tests.support.builders import make_services
from tests.support.clock import FrozenClock
from tests.support.fake_microsoft import FakeMicrosoft
from tests.support.teams_activities import (
    NURSE,
    TEAMS_ROUTE,
    TeamsBot,
    activity,
    execute,
    teams_bot,
)
from tests.test_checkin_teams import FORM, checkins, record


@pytest.fixture
def bot(db: Database, clock: FrozenClock, tmp_path: Path) -> Iterator[TeamsBot]:
    with FakeMicrosoft(tmp_path) as ms:
        with teams_bot(make_services(db, clock, routes=(TEAMS_ROUTE,)), ms) as bot:
            yield bot


def test_the_next_bed_recorded_on_a_card_open_on_another_device_is_recorded(
    bot: TeamsBot,
) -> None:
    first = record(bot, "card-1")
    second = record(bot, "card-1", bed="14", answer="better")  # the phone still shows card-1
    assert "bed 12" in json.dumps(first) and "bed 14" in json.dumps(second)
    assert checkins(bot) == 2
    record(bot, "card-1", bed="14", answer="better")  # Teams retrying that press
    assert checkins(bot) == 2


@pytest.mark.parametrize(
    "data",
    [
        {**FORM, "ward": "W" * 10_000},
        {**FORM, "bed": "B" * 10_000},
        {**FORM, "rr_form": "F" * 10_000},
        {**FORM, "bed": ["12"], "respondent": {"x": 1}},
        {},
    ],
)
def test_odd_check_in_cards_get_an_answer_and_nothing_half_recorded(
    bot: TeamsBot, data: dict[str, Any]
) -> None:
    answer = bot.post(execute(bot.ms, NURSE, "checkin", data))
    assert answer.status_code == 200
    assert answer.json()["value"]  # a card or a message: never silence
    assert checkins(bot) <= 1


@pytest.mark.parametrize(
    "value",
    ["not a dict", {"action": "not a dict"}, {"action": {"verb": "checkin", "data": "x"}}],
)
def test_an_invoke_whose_value_is_not_a_card_press_gets_an_answer(
    bot: TeamsBot, value: Any
) -> None:
    press = activity(bot.ms, NURSE, type="invoke", name="adaptiveCard/action", value=value)
    answer = bot.post(press)
    assert answer.status_code == 200
    assert DEFAULT_FALLBACK in json.dumps(answer.json())
    assert checkins(bot) == 0


def test_a_body_nested_too_deep_to_read_is_a_bad_request(
    bot: TeamsBot, caplog: pytest.LogCaptureFixture
) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    answer = requests.post(f"{bot.url}/api/messages", data=nested, timeout=10)
    assert answer.status_code == 400
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(
    ("part", "value"),
    [
        ("channelData", "x"),
        ("channelData", {"tenant": ["x"]}),
        ("conversation", "x"),
        ("from", 7),
    ],
)
def test_a_signed_activity_whose_parts_are_not_objects_is_a_bad_request(
    bot: TeamsBot, caplog: pytest.LogCaptureFixture, part: str, value: Any
) -> None:
    answer = bot.post(activity(bot.ms, NURSE, text="help", **{part: value}))
    assert answer.status_code == 400
    assert "Traceback" not in caplog.text
    assert bot.ms.connector_calls() == []
