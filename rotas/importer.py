"""Importing a rota file: all or nothing, idempotent, and a report a coordinator can act on.

A file is the word on each role it names, over the period it covers for that role (its first
start to its last end): live shifts of that role in that period, whichever file they came from,
are replaced. Replaced shifts are marked superseded, never deleted, so the history of who held
the bleep when survives. The same file twice finds every shift unchanged and writes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rotas.context import RotaServices
from rotas.csv_rota import read_csv
from rotas.directory import SlackLookup, UnknownPerson, ids_by_email, resolve_person
from rotas.ics_rota import read_ics
from rotas.report import ImportReport, describe
from rotas.rows import ReadResult, Rejection, ShiftRow
from rotas.times import local_time
from storage.database import UnitOfWork
from storage.tables import Shift, Staff

READERS = {".csv": read_csv, ".ics": read_ics}


class _Rejected(Exception):
    """Rows the directory refused; raised inside the transaction so nothing is written."""

    def __init__(self, rejected: list[Rejection]):
        self.rejected = rejected


def import_rota(
    *,
    services: RotaServices,
    path: Path,
    lookup_slack_id: SlackLookup | None = None,
    lookup_teams_id: SlackLookup | None = None,
) -> ImportReport:
    """Import shifts from a .csv or .ics file; the report says what changed or why nothing did.

    Never raises for a bad file (the report is not ok). DatabaseUnavailable propagates; an
    exception from `lookup_slack_id` or `lookup_teams_id` (email -> that platform's user id;
    the platform unreachable) is reported and nothing is imported.
    """
    report = ImportReport(source=path.name)
    read = _read(path, services)
    report.notes.extend(read.notes)
    if not read.rows:
        report.rejected = read.rejected or [Rejection(1, "no shifts in the file")]
        return report
    ids: dict[str, dict[str, str | None]] = {}
    for platform, lookup in (("slack", lookup_slack_id), ("teams", lookup_teams_id)):
        try:
            ids[platform] = ids_by_email(services.db, read.rows, lookup, platform)
        except Exception as error:  # the outside world failed: say so, import nothing
            name = platform.capitalize()
            report.rejected = [Rejection(0, f"could not ask {name} for user ids ({error})")]
            return report
    try:
        with services.db.unit_of_work() as uow:
            _apply(uow, services, read, ids, report, path.name)
    except _Rejected as rejected:
        report.rejected = rejected.rejected
        report.added, report.changed, report.removed, report.directory = [], [], [], []
        report.periods = []
    return report


def _read(path: Path, services: RotaServices) -> ReadResult:
    reader = READERS.get(path.suffix.lower())
    result = ReadResult()
    if reader is None:
        result.reject(0, f"{path.name}: not a rota file; give a .csv or .ics file")
        return result
    try:
        raw = path.read_bytes()
    except OSError as error:
        result.reject(0, f"cannot read {path.name}: {error.strerror or error}")
        return result
    try:
        # Any line ending, as reading the file as text would (a spreadsheet's lone \r too).
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as error:
        # Excel's plain "CSV" is saved in Windows' own encoding: "Zoë" is one byte, not UTF-8's.
        line = raw[: error.start].count(b"\n") + 1
        result.reject(
            line,
            f'{path.name} is not UTF-8 text; in Excel, save it as "CSV UTF-8 (Comma delimited)"',
        )
        return result
    return reader(text, services.timezone)


def _apply(
    uow: UnitOfWork,
    services: RotaServices,
    read: ReadResult,
    ids: dict[str, dict[str, str | None]],
    report: ImportReport,
    source: str,
) -> None:
    """Resolve every row's person (so one report names every bad row), then replace."""
    people: dict[int, Staff] = {}
    wanted: dict[str, dict[tuple[int, datetime, datetime], ShiftRow]] = defaultdict(dict)
    rejected = list(read.rejected)
    # A person named by email or id is resolved once a file, not once a row (three queries
    # each): their next row finds what the first found. A name alone is asked each time, as
    # a later row of the file may have named a second person of that name.
    resolved: dict[tuple[object, ...], Staff] = {}
    for row in read.rows:
        key = (row.identity, row.mobile, row.pager)
        person = resolved.get(key) if row.identity[1:] != ("", "", "") else None
        if person is None:
            try:
                person = resolve_person(
                    uow, row, ids["slack"], report.directory, ids["teams"], named=people
                )
            except UnknownPerson as error:
                rejected.append(Rejection(row.line, str(error)))
                continue
            resolved[key] = person
        assert person.id is not None
        people[person.id] = person
        wanted[row.role][(person.id, row.start, row.end)] = row
    if rejected:
        raise _Rejected(sorted(rejected, key=lambda r: r.line))
    now = services.clock.now()
    for role, shifts in sorted(wanted.items()):
        _replace(uow, role, shifts, people, report, source=source, now=now, tz=services.timezone)
    if report.changes:
        uow.events.record(
            review_id=None,
            kind="rota_import",
            at=now,
            source=source,
            added=len(report.added),
            changed=len(report.changed),
            removed=len(report.removed),
        )


def _replace(
    uow: UnitOfWork,
    role: str,
    wanted: dict[tuple[int, datetime, datetime], ShiftRow],
    people: dict[int, Staff],
    report: ImportReport,
    *,
    source: str,
    now: datetime,
    tz: ZoneInfo,
) -> None:
    """Make the live shifts of `role` over the rows' period exactly the rows; report the diff.
    A shift whose slot (start, end) now has someone else is reported as changed."""
    start = min(row.start for row in wanted.values())
    end = max(row.end for row in wanted.values())
    report.periods.append(
        f"{role}: {len(wanted)} shift{'' if len(wanted) == 1 else 's'}, "
        f"{local_time(start, tz)} to {local_time(end, tz)}"
    )
    live, _ = uow.rota.spans_between(role, start, end)
    existing = {(s.staff_id, s.start, s.end): s for s in live}
    gone = [shift for key, shift in existing.items() if key not in wanted]
    new = [key for key in wanted if key not in existing]
    report.unchanged += len(wanted) - len(new)
    # The replaced shifts by slot, so each new shift finds the one it changes at once.
    slots: dict[tuple[datetime, datetime], list[Shift]] = defaultdict(list)
    for shift in gone:
        shift.superseded_at = now
        slots[(shift.start, shift.end)].append(shift)
        if shift.staff_id not in people:
            people[shift.staff_id] = uow.rota.staff(shift.staff_id) or Staff(name="someone")
    changed: set[int] = set()
    for staff_id, begin, finish in new:
        uow.session.add(
            Shift(
                role=role,
                staff_id=staff_id,
                start=begin,
                end=finish,
                source=source,
                imported_at=now,
            )
        )
        when = describe(role, begin, finish, tz)
        before = slots[(begin, finish)].pop(0) if slots.get((begin, finish)) else None
        if before is None:
            report.added.append(f"{when}: {people[staff_id].name}")
        else:
            changed.add(id(before))
            report.changed.append(
                f"{when}: {people[before.staff_id].name} -> {people[staff_id].name}"
            )
    for shift in (shift for shift in gone if id(shift) not in changed):
        when = describe(role, shift.start, shift.end, tz)
        kept = _outside(uow, shift, start, end, now)
        if kept:
            times = " and ".join(f"{local_time(a, tz)} - {local_time(b, tz)}" for a, b in kept)
            report.changed.append(
                f"{when}: {people[shift.staff_id].name} now only {times}, outside this file's "
                "period"
            )
        else:
            report.removed.append(f"{when}: {people[shift.staff_id].name}")
    uow.session.flush()


def _outside(
    uow: UnitOfWork, shift: Shift, start: datetime, end: datetime, now: datetime
) -> list[tuple[datetime, datetime]]:
    """Keep the parts of a replaced `shift` outside [start, end), as shifts of its own file:
    a file speaks only for its period. (The night of 30 November, 20:00-08:00, lost its whole
    night to a December file starting at 07:00 on the 1st: nobody held the bleep from 20:00.)"""
    parts = [(shift.start, start)] if shift.start < start else []
    parts += [(end, shift.end)] if shift.end > end else []
    for begin, finish in parts:
        uow.session.add(
            Shift(
                role=shift.role,
                staff_id=shift.staff_id,
                start=begin,
                end=finish,
                source=shift.source,
                imported_at=now,
            )
        )
    return parts
