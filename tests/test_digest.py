"""The daily digest's figures, worked out by hand for a known day, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta

import pytest

from reviews import escalation, service
from reviews.digest import build_digest, collect, post_digest
from reviews.model import Outcome
from reviews.outbox import drain
from storage.digest import Spread
from tests.support.builders import (
    NURSE,
    OUTREACH,
    RecordingSender,
    make_services,
    on_rota,
    request,
)

DAY = date(2026, 12, 2)  # the 24 hours from 08:00 on 1 December (winter: local = UTC)


@pytest.fixture
def services(db, clock):
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", clock.now(), hours=48)
    return make_services(db, clock)


def a_known_day(services, clock) -> dict[str, int]:
    """Five urgent family calls and one standard staff call, raised at 09:00 on 1 December.

    Acknowledged after 1, 2, 3, 4 and 10 minutes (the last past the 5-minute target, after
    escalating to level 1); attended 20, 70 and 15 minutes after raising; the staff call is
    never acknowledged.
    """
    ids: dict[str, int] = {}
    for name in "ABCDE":
        ids[name] = service.raise_review(services=services, request=request(), by=NURSE).review_id
    staff_call = request(
        caller="staff", news2="", concern_kind="communication", ward="Ward 9", callback_number=""
    )
    ids["F"] = service.raise_review(services=services, request=staff_call, by=NURSE).review_id

    def at(minutes: int) -> None:
        clock.at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
        clock.advance(minutes=minutes)

    for minutes, name in ((1, "A"), (2, "B"), (3, "C"), (4, "D")):
        at(minutes)
        service.acknowledge(services=services, review_id=ids[name], by=OUTREACH)
    at(6)
    escalation.sweep(services)  # E and F reach level 1; nobody holds outreach-backup
    at(10)
    service.acknowledge(services=services, review_id=ids["E"], by=OUTREACH)
    at(15)
    service.attend(services=services, review_id=ids["E"], by=OUTREACH)
    at(20)
    service.attend(services=services, review_id=ids["A"], by=OUTREACH)
    at(30)
    service.record_outcome(
        services=services, review_id=ids["C"], by=OUTREACH, outcome=Outcome.NO_CHANGE
    )
    at(70)
    service.attend(services=services, review_id=ids["B"], by=OUTREACH)
    at(80)
    service.record_outcome(
        services=services, review_id=ids["A"], by=OUTREACH, outcome=Outcome.TRANSFER, detail="ICU"
    )
    service.record_outcome(
        services=services, review_id=ids["B"], by=OUTREACH, outcome=Outcome.CHANGE_IN_CARE
    )
    service.cancel(services=services, review_id=ids["E"], by=OUTREACH, reason="Raised twice")
    clock.at = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    return ids


def test_counts_by_caller_concern_and_ward(services, clock):
    a_known_day(services, clock)
    figures = collect(services, DAY).figures
    assert figures.window.hours == 24
    assert figures.raised == 6
    assert figures.by_caller == {"family": 5, "staff": 1}
    assert figures.by_concern == {"deterioration": 5, "communication": 1}
    assert figures.by_ward == {"Ward 7": 5, "Ward 9": 1}


def test_medians_percentiles_and_missed_targets(services, clock):
    a_known_day(services, clock)
    figures = collect(services, DAY).figures
    # Acknowledged after 60, 120, 180, 240, 600 s: median the 3rd; the 90th percentile is
    # 3.6 of the way along the 0-based ranks: 240 + 0.6 * (600 - 240) = 456 s.
    assert figures.acknowledge["*"] == Spread(
        5, pytest.approx(180, abs=0.01), pytest.approx(456, abs=0.01)
    )
    # Attended 900, 1200, 4200 s after raising: median 1200; 1200 + 0.8 * 3000 = 3600 s.
    assert figures.attend["urgent"] == Spread(
        3, pytest.approx(1200, abs=0.01), pytest.approx(3600, abs=0.01)
    )
    timings = {timing.urgency: timing for timing in figures.timings}
    urgent, standard = timings["urgent"], timings["standard"]
    assert (urgent.urgency, urgent.raised, urgent.acknowledged) == ("urgent", 5, 5)
    assert urgent.acknowledge_target == 300 and urgent.acknowledge_missed == 1  # E, 10 min
    # B attended 68 min after acknowledging; D was acknowledged and never attended.
    assert urgent.attend_target == 3600 and urgent.attend_missed == 2
    assert (standard.urgency, standard.acknowledged, standard.acknowledge_missed) == (
        "standard",
        0,
        1,
    )


def test_outcomes_escalations_gaps_and_open_requests(services, clock):
    ids = a_known_day(services, clock)
    digest = collect(services, DAY)
    assert digest.figures.outcomes == {
        ("transfer", "ICU"): 1,
        ("change_in_care", ""): 1,
        ("no_change", ""): 1,
        ("cancelled", ""): 1,
        ("open", ""): 2,
    }
    assert digest.figures.escalations == {0: 6, 1: 2}
    assert digest.figures.cover_gaps == 2
    assert digest.figures.delivery_failures == 0
    assert digest.open_total == 2
    assert [(r.review_id, r.state) for r in digest.open_oldest] == [
        (ids["D"], "acknowledged"),
        (ids["F"], "raised"),
    ]


def test_what_a_manager_reads(services, clock):
    a_known_day(services, clock)
    text = build_digest(services, day=DAY).text
    assert "the 24 hours from 08:00 Tue 01 Dec to 08:00 Wed 02 Dec" in text
    assert "Requests raised: 6" in text
    assert "Staff 1 (0.0), Patient 0 (0.0), Family, carer or advocate 5 (0.0)" in text
    assert "Time to acknowledge, from raising: median 3 min, 90th percentile 7 min 36 s" in text
    assert (
        "urgent: 5 of 5 acknowledged, median 3 min, 90th percentile 7 min 36 s; "
        "target: before the first escalation, 5 min, missed by 1" in text
    )
    assert (
        "urgent: 3 of 5 attended, median 20 min, 90th percentile 1 h 00 min; "
        "target: attending within 1 h 00 min of acknowledging, missed by 2" in text
    )
    assert "Transfer to a higher level of care 1 (ICU 1)" in text
    assert "Cancelled 1, Still open 2" in text
    assert "by level: level 1 2 (0.0)" in text
    assert "Cover gaps (a role with nobody on call): 2" in text
    assert "RR-0004 · Ward 7 · urgent · acknowledged · open 23 h 00 min" in text
    assert "RR-0006 · Ward 9 · standard · raised · open 23 h 00 min" in text


def test_digest_never_names_a_patient(services, clock):
    a_known_day(services, clock)
    post_digest(services, day=DAY)
    slack = RecordingSender()
    drain(services, {"slack": slack})
    # The figures first, then the chart (cover-gap warnings share the channel).
    figures, chart_message = [
        i
        for i in slack.to("C0DIGEST")
        if i.message.text.startswith(("Rapid review digest", "Requests and time to acknowledge"))
    ]
    assert figures.kind == chart_message.kind == "channel"
    for item in (figures, chart_message):
        for secret in ("9990000018", "07700 900123", "much more confused"):
            assert secret not in item.message.text
    assert "Rapid review digest" in figures.message.text and not figures.message.attachments
    (chart,) = chart_message.message.attachments
    assert chart.filename == "rapidreview-digest-2026-12-02.png"
    assert chart.content.startswith(b"\x89PNG")


def test_trend_compares_with_the_seven_days_before(services, clock):
    for day in (24, 25, 30):  # two in the week before, one long before is left out
        clock.at = datetime(2026, 11, day, 12, 0, tzinfo=UTC)
        service.raise_review(services=services, request=request(caller="patient"), by=NURSE)
    clock.at = datetime(2026, 11, 23, 7, 59, tzinfo=UTC)  # just before the 7 days began
    service.raise_review(services=services, request=request(), by=NURSE)
    clock.at = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    digest = collect(services, DAY)
    assert digest.figures.raised == 0
    assert digest.before.raised == 3
    assert digest.before.by_caller == {"patient": 3}
    assert (
        "Requests raised: 0 (0.4 a day in the 7 days before)"
        in build_digest(services, day=DAY).text
    )
    # The chart's 14 days end with DAY (index 13): 30 Nov falls in 1 Dec's digest day.
    assert digest.chart_by_caller == {
        (4, "family"): 1,
        (6, "patient"): 1,
        (7, "patient"): 1,
        (12, "patient"): 1,
    }


def test_a_busy_fortnights_chart_fits_in_a_teams_message():
    from reviews.chart import render

    days = [date(2026, 12, 1) + timedelta(days=d) for d in range(14)]
    png = render(
        days=days,
        by_caller={
            (i, c): (i * 7 + len(c)) % 9 for i in range(14) for c in ("staff", "patient", "family")
        },
        acknowledge={i: Spread(9, 200 + i * 30, 500 + i * 20) for i in range(14)},
        checkins={i: 60 + (i * 13) % 40 for i in range(14)},
    )
    assert png.startswith(b"\x89PNG")
    assert len(base64.b64encode(png)) < 24_000  # Teams refuses bot messages over about 28 KB


def test_a_day_not_yet_over_is_counted_as_it_stands_now(services, clock):
    """`digest --so-far`, or --date for today: a request raised a minute ago has missed no
    target and has not been open for the rest of the day."""
    clock.at = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    service.raise_review(services=services, request=request(), by=NURSE)
    clock.advance(minutes=1)
    text = build_digest(services, day=DAY).text
    assert "Rapid review digest so far: from 08:00 Tue 01 Dec to now, 20:01 Tue 01 Dec" in text
    assert "Requests raised: 1" in text
    assert "missed by 1" not in text
    assert "Still open at 20:01: 1" in text
    assert "RR-0001 · Ward 7 · urgent · raised · open 1 min" in text


def test_acknowledged_on_the_target_itself_has_not_missed_it(services, clock):
    """Five minutes to the second is within "before the first escalation" on both databases
    (SQLite's day fractions once made about half of them a few microseconds late)."""
    for n in range(12):
        clock.at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC) + timedelta(seconds=n * 37)
        review_id = service.raise_review(services=services, request=request(), by=NURSE).review_id
        clock.advance(minutes=5)
        service.acknowledge(services=services, review_id=review_id, by=OUTREACH)
        clock.advance(minutes=60)
        service.attend(services=services, review_id=review_id, by=OUTREACH)
    clock.at = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    (urgent,) = collect(services, DAY).figures.timings
    assert (urgent.acknowledged, urgent.acknowledge_missed) == (12, 0)
    assert (urgent.attended, urgent.attend_missed) == (12, 0)
    text = build_digest(services, day=DAY).text
    assert "target: before the first escalation, 5 min, missed by 0" in text
