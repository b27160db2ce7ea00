"""A clock a test moves by hand, passed in wherever the bot takes a reviews.clock.Clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FrozenClock:
    """A clock that moves only when told to."""

    def __init__(self, at: datetime):
        self.at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float = 0, **delta: float) -> datetime:
        self.at += timedelta(seconds=seconds, **delta)
        return self.at
