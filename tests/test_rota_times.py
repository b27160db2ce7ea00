"""The one DST rule for rota times, on the UK clock changes of 2026-10-25 and 2027-03-28."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from rotas.times import BadTime, next_wall_time, parse_rota_time
from tests.support.moments import utc

LONDON = ZoneInfo("Europe/London")


def test_a_missing_spring_time_moves_forward_by_the_gap():
    instant, note = parse_rota_time("2027-03-28T01:30", LONDON)
    assert instant == utc(2027, 3, 28, 1, 30)  # 02:30 BST
    assert instant.astimezone(LONDON).strftime("%H:%M %Z") == "02:30 BST"
    assert note and "does not exist" in note and "02:30 BST" in note


def test_a_repeated_autumn_time_is_the_first_occurrence():
    instant, note = parse_rota_time("2026-10-25T01:30", LONDON)
    assert instant == utc(2026, 10, 25, 0, 30)  # 01:30 BST, before the clocks go back
    assert note and "happens twice" in note and "01:30 BST" in note


def test_the_night_shift_is_13_hours_in_october_and_11_in_march():
    october = (
        parse_rota_time("2026-10-25T08:00", LONDON)[0]
        - parse_rota_time("2026-10-24T20:00", LONDON)[0]
    )
    march = (
        parse_rota_time("2027-03-28T08:00", LONDON)[0]
        - parse_rota_time("2027-03-27T20:00", LONDON)[0]
    )
    assert october.total_seconds() == 13 * 3600
    assert march.total_seconds() == 11 * 3600


def test_ordinary_times_carry_no_note_and_an_offset_wins():
    assert parse_rota_time("2026-12-01T08:00", LONDON) == (utc(2026, 12, 1, 8), None)
    assert parse_rota_time("2026-07-01T08:00", LONDON) == (utc(2026, 7, 1, 7), None)
    assert parse_rota_time("2026-07-01T08:00+00:00", LONDON) == (utc(2026, 7, 1, 8), None)
    assert parse_rota_time("2026-07-01T08:00Z", LONDON) == (utc(2026, 7, 1, 8), None)


@pytest.mark.parametrize("text", ["", "1 December 8am", "2026-12-01", "2026-13-01T08:00"])
def test_unreadable_times_say_why(text):
    with pytest.raises(BadTime):
        parse_rota_time(text, LONDON)


def test_next_wall_time_is_today_or_tomorrow_in_local_time():
    evening = utc(2027, 3, 27, 21, 0)  # 21:00 GMT, the night the clocks go forward
    assert next_wall_time(8, 0, after=evening, tz=LONDON) == utc(2027, 3, 28, 7, 0)
    assert next_wall_time(22, 0, after=evening, tz=LONDON) == utc(2027, 3, 27, 22, 0)


def test_next_wall_time_in_the_repeated_hour_is_the_next_time_the_clock_reads_it():
    """25 Oct 2026: the clock reads 01:30 twice, at 00:30 UTC (BST) and 01:30 UTC (GMT). Once
    the first has passed, the next is twenty minutes away, not tomorrow."""
    assert next_wall_time(1, 30, after=utc(2026, 10, 25, 0, 10), tz=LONDON) == utc(
        2026, 10, 25, 0, 30
    )  # 01:10 BST: the first 01:30, as the rule reads it
    for now in (utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 1, 10)):  # 01:45 BST, 01:10 GMT
        assert next_wall_time(1, 30, after=now, tz=LONDON) == utc(2026, 10, 25, 1, 30)
    assert next_wall_time(1, 30, after=utc(2026, 10, 25, 1, 30), tz=LONDON) == utc(
        2026, 10, 26, 1, 30
    )
