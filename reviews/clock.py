"""Time, passed in: the system clock in production, a clock a test moves by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that moves only when told to."""

    def __init__(self, at: datetime):
        self.at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float = 0, **delta: float) -> datetime:
        self.at += timedelta(seconds=seconds, **delta)
        return self.at


def next_slot(start: datetime, every: timedelta, now: datetime) -> datetime:
    """The first of start + every, start + 2 * every ... that is after `now`."""
    passed = max(int((now - start) / every), 0)
    return start + every * (passed + 1)
