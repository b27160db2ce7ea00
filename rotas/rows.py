"""One shift as a rota file states it, before anyone is looked up, and the checks every
format shares (role names, times, duplicates)."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Role names are free text to a trust, but one word: `/rapidreview rota cover ROLE @person`
# and the policy file name roles that way.
ROLE = re.compile(r"[a-z0-9][a-z0-9_-]{0,59}")
# Longer than this is almost always a typing slip in a date (a month-long "shift").
LONGEST_SHIFT = timedelta(days=7)


@dataclass(frozen=True)
class ShiftRow:
    line: int
    role: str
    name: str
    email: str | None
    slack_user_id: str | None
    teams_user_id: str | None
    start: datetime  # UTC
    end: datetime  # UTC
    mobile: str | None = None  # +447XXXXXXXXX
    pager: str | None = None

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return (
            self.name.lower(),
            self.email or "",
            self.slack_user_id or "",
            self.teams_user_id or "",
        )


@dataclass
class Rejection:
    line: int
    reason: str


@dataclass
class ReadResult:
    """What a reader made of a file: the good rows, the bad ones, and notes on DST decisions."""

    rows: list[ShiftRow] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def reject(self, line: int, reason: str) -> None:
        self.rejected.append(Rejection(line, reason))


EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def email_address(text: str) -> str:
    """The email, lower-cased; ValueError with a sentence if it cannot be one. (An email is
    how a rota row finds its person: "not-an-email" once replaced a nurse's own address in the
    staff directory, and her next correct row then made a second of her.)"""
    email = text.strip().lower()
    if not EMAIL.fullmatch(email):
        raise ValueError(f"not an email address: {text.strip()!r} (e.g. alex.carter@nhs.net)")
    return email


def role_name(text: str) -> str:
    """The role, lower-cased; ValueError with a sentence if it is not one word."""
    role = text.strip().lower()
    if not role:
        raise ValueError("no role given")
    if not ROLE.fullmatch(role):
        raise ValueError(
            f"unknown role format {text.strip()!r}: a role is one word of letters, digits and "
            "hyphens, e.g. outreach-backup"
        )
    return role


def check_span(start: datetime, end: datetime) -> str | None:
    """Why a shift's times cannot be right, or None."""
    if end <= start:
        return "end before start: the shift ends at or before it starts"
    if end - start > LONGEST_SHIFT:
        return "bad times: a shift longer than 7 days (is a date mistyped?)"
    return None


def reject_duplicates(result: ReadResult) -> None:
    """A row repeating another (same role, person, start and end), or the same person on the
    same role twice at once, is rejected with the line it repeats.

    Each person's kept shifts of a role never overlap, so the ones a row meets are found by
    bisecting them by start: a year's trust-wide rota of 100,000 rows is checked in a second,
    where comparing every row with every other took hours."""
    kept: dict[tuple[str, tuple[str, str, str, str]], list[tuple[datetime, datetime, ShiftRow]]]
    kept = {}
    rows: list[ShiftRow] = []
    for row in result.rows:
        spans = kept.setdefault((row.role, row.identity), [])
        # Kept spans are disjoint and sorted by start, so also by end: those the row meets
        # are the run from the first ending after its start to the last starting before its end.
        first = bisect_right(spans, row.start, key=lambda span: span[1])
        last = bisect_left(spans, row.end, key=lambda span: span[0])
        met = [span[2] for span in spans[first:last]]
        if not met:
            insort(spans, (row.start, row.end, row), key=lambda span: span[0])
            rows.append(row)
            continue
        twin = min(met, key=lambda k: k.line)
        if (twin.start, twin.end) == (row.start, row.end):
            result.reject(row.line, f"duplicate row: the same shift as line {twin.line}")
        else:
            result.reject(row.line, f"overlaps line {twin.line}: {row.name} on {row.role} twice")
    result.rows = rows
