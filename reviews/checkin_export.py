"""`export --month YYYY-MM --checkins`: the month's daily check-ins as CSV, with no identifiers
(ward, local day, who answered, their answer, whether a rapid review was raised)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from reviews.checkin_model import Answer, who_answered
from reviews.context import Services
from reviews.export import export_file, month_of, safe_cells

log = logging.getLogger(__name__)

COLUMNS = ["ward", "day", "who_answered", "answer", "review_raised"]


def write_checkin_export(*, services: Services, month: str, out: Path | None) -> Path:
    """Write the month's check-ins and return where. ExportError for a bad month or a folder
    given as `out`; OSError if the file cannot be written (what was written is removed);
    DatabaseUnavailable if the database cannot be read."""
    period = month_of(month, services)
    path = out or Path(f"rapidreview-checkins-{period.label}.csv")
    with services.db.reading() as uow, export_file(path) as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        count = 0
        for row in uow.checkins.month_rows(period.start, period.end):
            writer.writerow(
                safe_cells(
                    [
                        row.ward,
                        f"{row.recorded_at.astimezone(services.timezone):%Y-%m-%d}",
                        who_answered(row.respondent, row.not_asked_reason),
                        Answer(row.answer).label if row.answer else "",
                        "Yes" if row.review_id else "No",
                    ]
                )
            )
            count += 1
    log.info("check-in export for %s written: %s check-ins", period.label, count)
    return path
