"""The monthly export for NHS England's Martha's Rule data collection: one CSV row per request
raised in the month (local time), then a summary a trust can paste into its monthly return.

No NHS number or call-back number leaves unless `with_identifiers`, and then the file's name
says WITH-IDENTIFIERS, only its owner may read it, and the audit trail records who wrote it.
No cell starts with a character a spreadsheet reads as a formula.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, TextIO

from reviews.context import Actor, Services, operator
from reviews.model import Caller, ConcernKind, Outcome, format_reference
from reviews.permissions import check_manager
from storage.export import ExportStore

log = logging.getLogger(__name__)

COLUMNS = [
    "reference", "raised_at", "ward", "urgency", "news2", "caller_type", "concern_kind",
    "acute_deterioration_review", "state", "acknowledged_at", "attending_at", "closed_at",
    "cancelled_at", "minutes_to_acknowledge", "minutes_to_attend", "outcome",
    "change_in_care", "transfer_to_higher_level_of_care", "transfer_destination",
]  # fmt: skip
IDENTIFIER_COLUMNS = ["nhs_number", "callback_number"]
CHANGED_CARE = (Outcome.CHANGE_IN_CARE.value, Outcome.TRANSFER.value)
# What Excel, LibreOffice and Sheets take as the start of a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ExportError(ValueError):
    """The month asked for cannot be exported; the message says why."""


@dataclass(frozen=True)
class Month:
    first: date
    start: datetime  # UTC, local midnight on the first
    end: datetime  # UTC, local midnight on the first of the next month

    @property
    def label(self) -> str:
        return f"{self.first:%Y-%m}"


def month_of(text: str, services: Services) -> Month:
    """Parse YYYY-MM into the month's local-time bounds; ExportError if it is not one."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match or not 1 <= int(match[2]) <= 12:
        raise ExportError(f"--month: {text!r} is not a month like 2026-12")
    first = date(int(match[1]), int(match[2]), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)

    def midnight(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=services.timezone).astimezone(UTC)

    month = Month(first, midnight(first), midnight(following))
    now = services.clock.now()
    if month.start > now:
        this_month = now.astimezone(services.timezone)
        raise ExportError(
            f"--month: {first:%B %Y} has not begun, so it has no requests; give a month that "
            f"has, e.g. {this_month:%Y-%m}"
        )
    return month


def export_path(month: Month, out: Path | None, with_identifiers: bool) -> Path:
    """rapidreview-YYYY-MM.csv, or -WITH-IDENTIFIERS added to any name when identifiers go."""
    path = out or Path(f"rapidreview-{month.label}.csv")
    if with_identifiers and "WITH-IDENTIFIERS" not in path.name.upper():
        path = path.with_name(f"{path.stem}-WITH-IDENTIFIERS{path.suffix or '.csv'}")
    return path


def write_export(
    *,
    services: Services,
    month: str,
    out: Path | None,
    with_identifiers: bool,
    by: Actor | None = None,
) -> Path:
    """Write the month's CSV and return where. `by` defaults to the operator at the command
    line. ExportError for a bad month or a symlink where the file goes; NotAllowed for someone
    who is not a manager; OSError if the file cannot be written; DatabaseUnavailable if the
    database cannot be read."""
    by = by or operator()
    check_manager(services, by, "exports")
    period = month_of(month, services)
    if out is not None and out.is_dir():  # before a name is made of it, below
        raise ExportError(f"--out: {out} is a folder; give the file's name")
    path = export_path(period, out, with_identifiers)
    # Read in a read-only transaction: a long export against the live database holds up no
    # request. The audit event is written after, in a short transaction of its own.
    with services.db.reading() as uow, export_file(path, with_identifiers) as file:
        store = ExportStore(uow.session)
        writer = csv.writer(file)
        writer.writerow(COLUMNS + (IDENTIFIER_COLUMNS if with_identifiers else []))
        count = 0
        rows = store.month_rows(period.start, period.end, with_identifiers=with_identifiers)
        try:
            for row in rows:
                writer.writerow(safe_cells(request_row(row, services, with_identifiers)))
                count += 1
        finally:
            rows.close()  # PostgreSQL's server-side cursor, even when a write failed
        writer.writerow([])
        writer.writerows(safe_cells(row) for row in summary_rows(store, period))
    if with_identifiers:
        _audit(services, by, period.label, count, path)
    log.info(
        "export for %s written: %s requests%s",
        period.label,
        count,
        " WITH IDENTIFIERS" if with_identifiers else "",
    )
    return path


def _audit(services: Services, by: Actor, month: str, count: int, path: Path) -> None:
    """Record an export with identifiers; if that cannot be recorded, the file goes too: no
    identifiable export exists without its audit event."""
    try:
        with services.db.unit_of_work() as uow:
            uow.events.record(
                review_id=None,
                kind="export_with_identifiers",
                at=services.clock.now(),
                **by.audited,
                month=month,
                requests=count,
                path=str(path.resolve()),
            )
    except Exception:
        path.unlink(missing_ok=True)
        raise


@contextmanager
def export_file(path: Path, with_identifiers: bool = False) -> Iterator[TextIO]:
    """A file to write an export in, which becomes `path` once it is whole. ExportError for a
    folder or (with identifiers) a symlink. Written beside it first and renamed: a file left
    half-written (the database lost, the disk full, the command stopped) is removed, as half a
    file is no export (and one with identifiers would have no audit event), and an earlier
    export of the same name stays as it was."""
    if path.is_dir():
        raise ExportError(f"--out: {path} is a folder; give the file's name")
    if with_identifiers and path.is_symlink():
        raise ExportError(f"{path} is a symbolic link; give the real file's name")
    partial = path.with_name(f".{path.name}.partial")
    file = _open(partial, with_identifiers)
    try:
        with file:
            yield file
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


def _open(path: Path, with_identifiers: bool) -> TextIO:
    """The file to write, emptied. With identifiers: owner-only (0600) even when it already
    existed with a looser mode, and never through a symlink, which could point anywhere."""
    if not with_identifiers:
        return path.open("w", newline="", encoding="utf-8")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        if path.is_symlink():
            raise ExportError(f"{path} is a symbolic link; give the real file's name") from None
        raise error
    os.fchmod(descriptor, 0o600)
    os.ftruncate(descriptor, 0)
    return os.fdopen(descriptor, "w", newline="", encoding="utf-8")


def safe_cells(row: list[str]) -> list[str]:
    """`row` with a leading apostrophe on any cell a spreadsheet would run as a formula."""
    return [f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell for cell in row]


def request_row(row: Any, services: Services, with_identifiers: bool) -> list[str]:
    outcome = row.outcome or ""
    values = [
        format_reference(row.id),
        _local(row.raised_at, services),
        row.ward,
        row.urgency,
        "" if row.news2 is None else str(row.news2),
        Caller(row.caller).label,
        ConcernKind(row.concern_kind).label,
        _yes(row.concern_kind == ConcernKind.DETERIORATION),
        row.state,
        _local(row.acknowledged_at, services),
        _local(row.attending_at, services),
        _local(row.closed_at, services),
        _local(row.cancelled_at, services),
        _minutes(row.to_acknowledge),
        _minutes(row.to_attend),
        Outcome(outcome).label if outcome else "",
        _yes(outcome in CHANGED_CARE) if outcome else "",
        _yes(outcome == Outcome.TRANSFER) if outcome else "",
        (row.outcome_detail or "") if outcome == Outcome.TRANSFER else "",
    ]
    if with_identifiers:
        values += [row.nhs_number or "", row.callback_number or ""]
    return values


def summary_rows(store: ExportStore, month: Month) -> list[list[str]]:
    """measure,value rows: calls by caller and concern, and what they led to."""
    by_caller = store.count_by("caller", month.start, month.end)
    outcomes = store.month_summary(month.start, month.end)
    rows = [
        ["measure", "value"],
        [f"Month (requests raised, {month.first:%B %Y}, local time)", month.label],
        ["Calls (requests raised)", str(sum(by_caller.values()))],
    ]
    rows += [[f"Calls from: {c.label}", str(by_caller.get(c.value, 0))] for c in Caller]
    for kind in ConcernKind:
        mine = {(s, w): n for (k, s, w), n in outcomes.items() if k == kind.value}
        rows.append([f"Calls about: {kind.label}", str(sum(mine.values()))])
        for outcome in Outcome:
            total = sum(n for (s, _), n in mine.items() if s == outcome.value)
            rows.append([f"  {kind.label}: {outcome.label}", str(total)])
            if outcome is Outcome.TRANSFER:
                rows += [
                    [f"  {kind.label}: transfer to {w or 'not said'}", str(n)]
                    for (s, w), n in sorted(mine.items())
                    if s == outcome.value
                ]
        unresolved = sum(n for (s, _), n in mine.items() if s not in {o.value for o in Outcome})
        rows.append([f"  {kind.label}: cancelled or still open", str(unresolved)])
    for measure, spread in store.month_spreads(month.start, month.end).items():
        rows.append([f"Median minutes to {measure}", _minutes(spread.median)])
        rows.append([f"90th percentile minutes to {measure}", _minutes(spread.p90)])
    return rows


def _local(moment: datetime | None, services: Services) -> str:
    return moment.astimezone(services.timezone).strftime("%Y-%m-%d %H:%M") if moment else ""


def _minutes(seconds: float | None) -> str:
    """Minutes to one decimal, a half rounded up as a spreadsheet's ROUND does: 4 min 3 s is
    4.1. Seconds are taken to the millisecond first, as stored: a float's last bits (4.05 is
    4.04999...) must not decide what a trust reports."""
    if seconds is None:
        return ""
    minutes = Decimal(str(round(seconds, 3))) / 60
    return str(minutes.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"
