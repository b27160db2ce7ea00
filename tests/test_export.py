"""The monthly export for the national Martha's Rule data collection."""

from __future__ import annotations

import csv
import stat
from datetime import UTC, datetime, timedelta

import pytest

from reviews import service
from reviews.export import COLUMNS, ExportError, write_export
from reviews.model import Outcome
from tests.support.builders import NURSE, OUTREACH, make_services, on_rota, request


@pytest.fixture
def services(db, clock):
    clock.at = datetime(2026, 7, 31, 12, 0, tzinfo=UTC)
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", clock.now(), hours=24)
    return make_services(db, clock)


def raise_at(services, clock, moment: datetime, **form: str) -> int:
    clock.at = moment
    return service.raise_review(services=services, request=request(**form), by=NURSE).review_id


def read(path) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The request rows as dicts, and the summary as measure -> value."""
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    blank = rows.index([])
    header, requests, summary = rows[0], rows[1:blank], rows[blank + 2 :]
    return [dict(zip(header, row, strict=True)) for row in requests], dict(summary)


def test_month_is_local_time_at_both_ends(services, clock, tmp_path):
    # 23:59 BST on 31 July is 22:59 UTC; 00:00 BST on 1 August is still 31 July in UTC.
    july = raise_at(services, clock, datetime(2026, 7, 31, 22, 59, tzinfo=UTC))
    august = raise_at(services, clock, datetime(2026, 7, 31, 23, 0, tzinfo=UTC))
    july_rows, _ = read(
        write_export(
            services=services, month="2026-07", out=tmp_path / "july.csv", with_identifiers=False
        )
    )
    august_rows, _ = read(
        write_export(
            services=services, month="2026-08", out=tmp_path / "august.csv", with_identifiers=False
        )
    )
    assert [(r["reference"], r["raised_at"]) for r in july_rows] == [
        (f"RR-{july:04d}", "2026-07-31 23:59")
    ]
    assert [(r["reference"], r["raised_at"]) for r in august_rows] == [
        (f"RR-{august:04d}", "2026-08-01 00:00")
    ]


def test_columns_carry_the_national_categories(services, clock, tmp_path):
    raised = datetime(2026, 7, 31, 12, 0, tzinfo=UTC)
    transfer = raise_at(services, clock, raised, news2="8")
    clock.advance(minutes=4)
    service.acknowledge(services=services, review_id=transfer, by=OUTREACH)
    clock.advance(minutes=11)
    service.attend(services=services, review_id=transfer, by=OUTREACH)
    clock.advance(minutes=45)
    service.record_outcome(
        services=services, review_id=transfer, by=OUTREACH, outcome=Outcome.TRANSFER, detail="HDU"
    )
    redirected = raise_at(
        services,
        clock,
        raised.replace(hour=13),
        caller="staff",
        news2="",
        concern_kind="communication",
        callback_number="",
    )
    service.record_outcome(
        services=services, review_id=redirected, by=OUTREACH, outcome=Outcome.REDIRECTED
    )
    raise_at(services, clock, raised.replace(hour=14), caller="patient", concern_kind="clinical")

    path = write_export(
        services=services, month="2026-07", out=tmp_path / "out.csv", with_identifiers=False
    )
    rows, summary = read(path)
    assert list(rows[0]) == COLUMNS
    first = rows[0]
    assert first == first | {
        "raised_at": "2026-07-31 13:00",
        "ward": "Ward 7",
        "urgency": "emergency",
        "news2": "8",
        "caller_type": "Family, carer or advocate",
        "concern_kind": "Acute deterioration",
        "acute_deterioration_review": "Yes",
        "state": "closed",
        "acknowledged_at": "2026-07-31 13:04",
        "attending_at": "2026-07-31 13:15",
        "closed_at": "2026-07-31 14:00",
        "minutes_to_acknowledge": "4.0",
        "minutes_to_attend": "15.0",
        "outcome": "Transfer to a higher level of care",
        "change_in_care": "Yes",
        "transfer_to_higher_level_of_care": "Yes",
        "transfer_destination": "HDU",
    }
    assert rows[1]["acute_deterioration_review"] == "No"
    assert rows[1]["outcome"] == "Concern redirected (not deterioration)"
    assert rows[1]["change_in_care"] == "No" and rows[1]["news2"] == ""
    assert rows[2]["state"] == "raised" and rows[2]["outcome"] == ""
    assert summary["Calls (requests raised)"] == "3"
    assert summary["Calls from: Patient"] == "1"
    assert summary["Calls from: Staff"] == "1"
    assert summary["Calls from: Family, carer or advocate"] == "1"
    assert summary["Calls about: Acute deterioration"] == "1"
    assert summary["  Acute deterioration: Transfer to a higher level of care"] == "1"
    assert summary["  Acute deterioration: transfer to HDU"] == "1"
    assert (
        summary["  Communication or care coordination: Concern redirected (not deterioration)"]
        == "1"
    )
    assert summary["  Other clinical concern: cancelled or still open"] == "1"
    # Acknowledged after 4 and 0 minutes (recording an outcome acknowledges): median 2.
    assert summary["Median minutes to acknowledge"] == "2.0"
    assert summary["Median minutes to attend"] == "15.0"


def test_minutes_round_halves_up_as_a_spreadsheet_does(services, clock, tmp_path):
    """4 min 3 s is 4.05 minutes: 4.1, as ROUND(4.05, 1) says in a spreadsheet, on both
    databases (4.05 has no exact binary form, so it printed as 4.0; SQLite's day fractions also
    made 4 min 9 s 4.1 minutes where PostgreSQL said 4.2)."""
    raised = datetime(2026, 7, 31, 12, 0, tzinfo=UTC)
    for n, (to_acknowledge, to_attend) in enumerate(((243, 249), (249, 1083), (255, 2313))):
        review_id = raise_at(services, clock, raised + timedelta(seconds=n * 41))
        clock.advance(to_acknowledge)
        service.acknowledge(services=services, review_id=review_id, by=OUTREACH)
        clock.advance(to_attend - to_acknowledge)
        service.attend(services=services, review_id=review_id, by=OUTREACH)
    rows, summary = read(
        write_export(
            services=services, month="2026-07", out=tmp_path / "out.csv", with_identifiers=False
        )
    )
    assert [(r["minutes_to_acknowledge"], r["minutes_to_attend"]) for r in rows] == [
        ("4.1", "4.2"),  # 4.05 and 4.15
        ("4.2", "18.1"),  # 4.15 and 18.05
        ("4.3", "38.6"),  # 4.25 and 38.55
    ]
    assert summary["Median minutes to acknowledge"] == "4.2"  # 4.15
    assert summary["90th percentile minutes to attend"] == "34.5"  # 18.05 + 0.8 * 20.5 = 34.45


def test_no_identifiers_unless_asked_and_then_the_name_says_so(services, clock, tmp_path):
    raise_at(services, clock, datetime(2026, 7, 31, 12, 0, tzinfo=UTC))
    plain = write_export(
        services=services, month="2026-07", out=tmp_path / "july.csv", with_identifiers=False
    )
    text = plain.read_text(encoding="utf-8")
    assert "9990000018" not in text and "07700 900123" not in text
    assert "much more confused" not in text

    named = write_export(
        services=services, month="2026-07", out=tmp_path / "july.csv", with_identifiers=True
    )
    assert named.name == "july-WITH-IDENTIFIERS.csv"
    assert stat.S_IMODE(named.stat().st_mode) == 0o600
    rows, _ = read(named)
    assert (rows[0]["nhs_number"], rows[0]["callback_number"]) == ("9990000018", "07700 900123")


def test_default_file_name(services, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        write_export(services=services, month="2026-07", out=None, with_identifiers=False).name
        == "rapidreview-2026-07.csv"
    )
    assert (
        write_export(services=services, month="2026-07", out=None, with_identifiers=True).name
        == "rapidreview-2026-07-WITH-IDENTIFIERS.csv"
    )


@pytest.mark.parametrize("month", ["2026-13", "December", "2026-1"])
def test_a_month_that_is_not_one_is_refused(services, tmp_path, month):
    with pytest.raises(ExportError, match="not a month like 2026-12"):
        write_export(services=services, month=month, out=tmp_path / "x.csv", with_identifiers=False)
