"""Moments for tests, written as numbers."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(*parts: int) -> datetime:
    """A UTC moment from (year, month, day[, hour[, minute[, second]]])."""
    year, month, day, hour, minute, second = (*parts, 0, 0, 0)[:6]
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
