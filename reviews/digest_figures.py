"""What a digest holds: the figures of a window and of the week before, for the text and chart."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from storage.checkins import WardCheckins
from storage.digest import OpenRequest, Spread, Timing


@dataclass(frozen=True)
class Window:
    start: datetime  # UTC
    end: datetime  # UTC

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


@dataclass(frozen=True)
class Figures:
    """Everything counted over one window, for the requests raised in it."""

    window: Window
    raised: int
    by_caller: dict[str, int]
    by_concern: dict[str, int]
    by_ward: dict[str, int]
    timings: list[Timing]
    acknowledge: dict[str, Spread]  # per urgency, and "*" for all
    attend: dict[str, Spread]
    outcomes: dict[tuple[str, str], int]  # (outcome | cancelled | open, transfer destination)
    escalations: dict[int, int]  # level -> requests that reached it
    cover_gaps: int
    delivery_failures: int
    texts_sent: int = 0  # texts and pages to on-call staff, sent in the window
    texts_failed: int = 0
    delivery_delays: int = 0  # messages held up past the outbox's alarm, and still tried


@dataclass(frozen=True)
class Digest:
    day: date
    figures: Figures
    before: Figures  # the 7 days before, for the trend
    open_total: int
    open_oldest: list[OpenRequest]
    chart_days: list[date]
    chart_by_caller: dict[tuple[int, str], int]
    chart_acknowledge: dict[int, Spread]
    checkins: list[WardCheckins] = field(default_factory=list)  # per ward, in the window
    wards_without_checkins: list[str] = field(default_factory=list)
    chart_checkins: dict[int, int] = field(default_factory=dict)
    complete: bool = True  # False: the day is not over; figures as they stand now
