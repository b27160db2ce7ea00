"""Time, passed in: the system clock in production; tests pass their own (tests/support)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def next_slot(start: datetime, every: timedelta, now: datetime) -> datetime:
    """The first of start + every, start + 2 * every ... that is after `now`."""
    passed = max(int((now - start) / every), 0)
    return start + every * (passed + 1)
