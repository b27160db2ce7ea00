"""The rota CSV of CONTRACT.md: a header row, then one shift a row, local wall-clock times."""

from __future__ import annotations

import csv
import io
from zoneinfo import ZoneInfo

from rotas.contact import pager_id, uk_mobile
from rotas.rows import (
    ReadResult,
    ShiftRow,
    check_span,
    email_address,
    reject_duplicates,
    role_name,
)
from rotas.times import BadTime, parse_rota_time
from storage.rota import platform_user_id

HEADER = ["role", "name", "email", "slack_user_id", "teams_user_id", "start", "end"]
# After those, either or both of these, in any order (CONTRACT.md "Text messages and pages").
OPTIONAL = ("mobile", "pager")


def read_csv(text: str, tz: ZoneInfo) -> ReadResult:
    """Every row as a ShiftRow or a rejection naming its line; a wrong header rejects line 1."""
    result = ReadResult()
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))  # Excel saves a byte-order mark
    header = next(reader, None)
    if header is None:
        result.reject(1, "the file is empty: expected the header " + ",".join(HEADER))
        return result
    names = [cell.strip().lower() for cell in header]
    extra = names[len(HEADER) :]
    if names[: len(HEADER)] != HEADER or len(set(extra)) != len(extra) or set(extra) - {*OPTIONAL}:
        result.reject(
            1,
            "wrong header: expected " + ",".join(HEADER) + " (then optionally mobile,pager)"
            ", got " + ",".join(header),
        )
        return result
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            _read_row(result, reader.line_num, cells, tz, extra)
    except csv.Error as error:  # a quote never closed, a stray line ending inside a field
        result.reject(reader.line_num, f"not readable as CSV ({error})")
    reject_duplicates(result)
    return result


def _read_row(
    result: ReadResult, line: int, cells: list[str], tz: ZoneInfo, extra: list[str]
) -> None:
    if len(cells) != len(HEADER) + len(extra):
        result.reject(line, f"expected {len(HEADER) + len(extra)} columns, found {len(cells)}")
        return
    role_text, name, email, slack, teams, start_text, end_text = (
        c.strip() for c in cells[: len(HEADER)]
    )
    try:
        contact = _contact(dict(zip(extra, cells[len(HEADER) :], strict=True)))
    except ValueError as error:
        result.reject(line, str(error))
        return
    try:
        role = role_name(role_text)
    except ValueError as error:
        result.reject(line, str(error))
        return
    if not name:
        result.reject(line, "no name given")
        return
    try:
        email = email_address(email) if email else ""
    except ValueError as error:
        result.reject(line, str(error))
        return
    try:
        start, start_note = parse_rota_time(start_text, tz)
        end, end_note = parse_rota_time(end_text, tz)
    except BadTime as error:
        result.reject(line, f"bad times: {error}")
        return
    problem = check_span(start, end)
    if problem:
        result.reject(line, problem)
        return
    result.notes.extend(f"line {line}: {note}" for note in (start_note, end_note) if note)
    result.rows.append(
        ShiftRow(
            line,
            role,
            name,
            email or None,
            slack or None,
            platform_user_id("teams", teams) or None,
            start,
            end,
            **contact,
        )
    )


def _contact(cells: dict[str, str]) -> dict[str, str | None]:
    """The row's mobile (normalised) and pager, each None when the cell is empty."""
    mobile, pager = cells.get("mobile", "").strip(), cells.get("pager", "").strip()
    return {
        "mobile": uk_mobile(mobile) if mobile else None,
        "pager": pager_id(pager) if pager else None,
    }
