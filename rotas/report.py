"""What an import tells the rota coordinator: what it added, changed, removed and rejected."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from rotas.rows import Rejection
from rotas.times import local_time

# A month's rota adds a hundred shifts or more; past this many, added shifts are summarised.
LIST_AT_MOST = 20


def describe(role: str, start: datetime, end: datetime, tz: ZoneInfo) -> str:
    return f"{role} {local_time(start, tz)} - {local_time(end, tz)}"


@dataclass
class ImportReport:
    source: str
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    directory: list[str] = field(default_factory=list)  # staff added or updated
    periods: list[str] = field(default_factory=list)  # per role: what span the file covers
    rejected: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how the DST rule read a time, and the like

    @property
    def ok(self) -> bool:
        return not self.rejected

    @property
    def changes(self) -> int:
        return len(self.added) + len(self.changed) + len(self.removed) + len(self.directory)

    def lines(self) -> list[str]:
        """The report as printed by `python bot.py rota import FILE`."""
        if not self.ok:
            count = len(self.rejected)
            return [
                f"Nothing imported from {self.source}: {count} problem{'s' * (count != 1)}.",
                *(f"line {r.line}: {r.reason}" if r.line else r.reason for r in self.rejected),
            ]
        lines = [
            f"Imported {self.source}: {len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.removed)} removed, {self.unchanged} unchanged."
        ]
        if not self.changes:
            lines.append("Nothing changed: the rota already says this.")
        lines += self.periods
        if len(self.added) <= LIST_AT_MOST:
            lines += [f"added: {line}" for line in self.added]
        lines += [f"changed: {line}" for line in self.changed]
        lines += [f"removed: {line}" for line in self.removed]
        lines += self.directory
        lines += [f"note: {note}" for note in self.notes]
        return lines
