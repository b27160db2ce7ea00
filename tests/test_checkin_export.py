"""`python bot.py export --month YYYY-MM --checkins`: the month's check-ins as CSV, no
identifiers, local days at both ends of the month (run as a user runs it)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime

import pytest

from reviews.checkin_model import CheckinForm, validate_checkin
from reviews.checkins import record_checkin
from storage.database import Database
from storage.migrate import upgrade
from tests.support.builders import NURSE, failing_on_call, make_services
from tests.support.process import run_bot


def check_in(services, clock, moment: datetime, **answers: str) -> None:
    clock.at = moment
    form = {"ward": "Ward 7", "bed": "12", "respondent": "patient", "answer": "same", **answers}
    record_checkin(
        services=services, checkin=validate_checkin(CheckinForm(**form)), by=NURSE, source="slack"
    )


def test_the_months_checkins_without_identifiers(tmp_path, clock):
    url = f"sqlite:///{tmp_path}/rr.db"
    db = Database(url)
    upgrade(db.engine)
    services = make_services(db, clock)
    # Local days: 00:00 BST on 1 July is 23:00 UTC on 30 June; 23:59 BST on 31 July is 22:59
    # UTC (both July); 00:00 BST on 1 August is 23:00 UTC on 31 July (August).
    check_in(services, clock, datetime(2026, 7, 1, 9, 0, tzinfo=UTC), answer="better")
    check_in(services, clock, datetime(2026, 7, 31, 22, 59, tzinfo=UTC), respondent="family",
             answer="worse", wants_review="yes", worries="She is not herself at all")  # fmt: skip
    check_in(services, clock, datetime(2026, 7, 31, 23, 0, tzinfo=UTC))
    check_in(services, clock, datetime(2026, 6, 30, 23, 0, tzinfo=UTC), ward="=HYPERLINK(1)",
             respondent="not_asked", answer="", not_asked_reason="declined")  # fmt: skip
    db.dispose()
    out = tmp_path / "checkins.csv"
    result = run_bot(
        "export", "--month", "2026-07", "--checkins", "--out", str(out), DATABASE_URL=url
    )
    assert result.returncode == 0, result.stderr
    with out.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows == [
        ["ward", "day", "who_answered", "answer", "review_raised"],
        ["'=HYPERLINK(1)", "2026-07-01", "Not asked: declined to answer", "", "No"],
        ["Ward 7", "2026-07-01", "Patient", "Better", "No"],
        ["Ward 7", "2026-07-31", "Family, carer or advocate", "Worse", "Yes"],
    ]
    text = out.read_text()
    assert "12" not in text and "herself" not in text  # no bed, no free text


def test_a_checkin_export_cut_short_or_given_a_folder_leaves_no_file(
    tmp_path, clock, monkeypatch
) -> None:
    """A full disk half-way: half an export read as a whole month's would undercount the
    month's check-ins, so the file goes and the error is raised. A folder is refused by name."""
    from reviews import checkin_export
    from reviews.export import ExportError

    db = Database(f"sqlite:///{tmp_path / 'rr.db'}")
    upgrade(db.engine)
    services = make_services(db, clock)
    for ward in ("Ward 7", "Ward 8", "Ward 9"):
        check_in(services, clock, datetime(2026, 7, 1, 9, 0, tzinfo=UTC), ward=ward)
    disk_full = OSError(28, "No space left on device")
    real = checkin_export.who_answered
    monkeypatch.setattr(checkin_export, "who_answered", failing_on_call(2, real, disk_full))
    exports = tmp_path / "exports"
    exports.mkdir()
    month = "2026-07"
    with pytest.raises(OSError, match="No space left"):
        checkin_export.write_checkin_export(services=services, month=month, out=exports / "c.csv")
    with pytest.raises(ExportError, match="is a folder; give the file's name"):
        checkin_export.write_checkin_export(services=services, month=month, out=exports)
    assert list(exports.iterdir()) == []
