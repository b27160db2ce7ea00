"""Check-ins in the managers' digest: per ward, "worse" answers, reviews raised, wards with
none, and the chart's line; worked out by hand on days the clocks change (SQLite, PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from reviews.checkin_model import CheckinForm, validate_checkin
from reviews.checkins import record_checkin
from reviews.digest import collect, digest_text
from reviews.wards import Ward, Wards
from tests.support.builders import NURSE, make_services
from tests.support.moments import utc


def check_in(services, clock, moment: tuple[int, ...], ward: str, **answers: str) -> None:
    clock.at = utc(*moment)
    form = {"ward": ward, "bed": "1", "respondent": "patient", "answer": "same", **answers}
    record_checkin(
        services=services, checkin=validate_checkin(CheckinForm(**form)), by=NURSE, source="slack"
    )


@pytest.mark.parametrize(
    ("day", "first", "last", "outside"),
    [
        # Autumn: 08:00 BST on 24 Oct is 07:00 UTC; 08:00 GMT on the 25th is 08:00 UTC (25 h).
        (date(2026, 10, 25), (2026, 10, 24, 7, 0), (2026, 10, 25, 7, 59), (2026, 10, 24, 6, 59)),
        # Spring: 08:00 GMT on 27 Mar is 08:00 UTC; 08:00 BST on the 28th is 07:00 UTC (23 h).
        (date(2027, 3, 28), (2027, 3, 27, 8, 0), (2027, 3, 28, 6, 59), (2027, 3, 28, 7, 0)),
    ],
)
def test_each_wards_checkins_in_a_digest_day_across_a_clock_change(
    db, clock, day, first, last, outside
):
    services = make_services(db, clock)
    # Ward 5 was checked in during the week before, but not in this digest day.
    check_in(services, clock, (first[0], first[1], first[2] - 3, 12, 0), "Ward 5")
    check_in(services, clock, first, "Ward 7", answer="worse")
    check_in(services, clock, first, "Ward 7", answer="worse", wants_review="yes")
    check_in(services, clock, last, "Ward 7", respondent="family", answer="better")
    check_in(services, clock, last, "Ward 9", respondent="not_asked", answer="",
             not_asked_reason="asleep")  # fmt: skip
    check_in(services, clock, outside, "Ward 9", answer="worse", wants_review="yes")

    clock.at = utc(day.year, day.month, day.day, 12)  # the day is over: its digest is due
    digest = collect(services, day)
    figures = {(w.ward, w.checkins, w.worse, w.reviews) for w in digest.checkins}
    assert figures == {("Ward 7", 3, 2, 1), ("Ward 9", 1, 0, 0)}
    assert digest.wards_without_checkins == ["Ward 5"]
    # The chart's last day (index 13) is this digest day; the one outside falls either side.
    assert digest.chart_checkins[13] == 4
    text = digest_text(services, day=day)
    assert "Daily check-ins (patients' and families' own view): 4" in text
    assert "  Ward 7: 3 check-ins, 2 worse, 1 rapid review raised" in text
    assert "  Ward 9: 1 check-in, 0 worse, 0 rapid reviews raised" in text
    assert "  Wards with none: Ward 5" in text


def test_wards_of_the_wards_file_without_checkins_are_named(db, clock):
    wards = Wards((Ward(code="cedar", name="Cedar Ward"), Ward(code="ward-7", name="Ward 7")))
    services = replace(make_services(db, clock), wards=wards)
    check_in(services, clock, (2026, 12, 1, 12, 0), "Ward 7")
    check_in(services, clock, (2026, 11, 28, 12, 0), "Ward 3")
    clock.at = utc(2026, 12, 2, 12)  # the day is over: its digest is due
    assert collect(services, date(2026, 12, 2)).wards_without_checkins == ["Cedar Ward", "Ward 3"]


def test_a_day_without_checkins_says_so(db, clock):
    text = digest_text(make_services(db, clock), day=date(2026, 12, 2))
    assert "Daily check-ins (patients' and families' own view): 0" in text
    assert "  Wards with none: none" in text
