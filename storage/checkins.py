"""Queries on daily check-ins: recording, a ward's day, the prompt's count, digest and export."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlmodel import Session, col
from sqlmodel.sql.sqltypes import UTCDateTime

from storage.tables import Checkin


@dataclass(frozen=True)
class WardCheckins:
    """One ward's check-ins in a window: how many, how many said worse, reviews they raised."""

    ward: str
    checkins: int
    worse: int
    reviews: int


class CheckinStore:
    def __init__(self, session: Session):
        self.session = session

    def add(self, checkin: Checkin) -> Checkin:
        self.session.add(checkin)
        self.session.flush()
        return checkin

    def by_submission_key(self, key: str) -> Checkin | None:
        query = select(Checkin).where(col(Checkin.submission_key) == key)
        return self.session.execute(query).scalars().first()

    def last_ward(self, source: str, user_id: str) -> str | None:
        """The ward this person last recorded a check-in on, to pre-choose it next time."""
        query = (
            select(col(Checkin.ward))
            .where(col(Checkin.source) == source, col(Checkin.recorded_by) == user_id)
            .order_by(col(Checkin.recorded_at).desc(), col(Checkin.id).desc())
            .limit(1)
        )
        return self.session.execute(query).scalars().first()

    def for_ward(self, ward: str, start: datetime, end: datetime) -> Sequence[Checkin]:
        """A ward's check-ins recorded in [start, end), in bed order then time."""
        query = (
            select(Checkin)
            .where(col(Checkin.ward) == ward, _recorded_in(start, end))
            .order_by(col(Checkin.bed), col(Checkin.recorded_at))
        )
        return self.session.execute(query).scalars().all()

    def count_since(self, ward: str, start: datetime, end: datetime) -> tuple[int, int]:
        """A ward's check-ins recorded in [start, end), and how many beds they covered."""
        query = select(func.count(), func.count(func.distinct(col(Checkin.bed)))).where(
            col(Checkin.ward) == ward, _recorded_in(start, end)
        )
        checkins, beds = self.session.execute(query).one()
        return int(checkins), int(beds)

    def per_ward(self, start: datetime, end: datetime) -> list[WardCheckins]:
        """Every ward with a check-in in [start, end): counts, "worse" answers, reviews."""
        query = (
            select(
                col(Checkin.ward),
                func.count(),
                func.sum(case((col(Checkin.answer) == "worse", 1), else_=0)),
                func.count(col(Checkin.review_id)),
            )
            .where(_recorded_in(start, end))
            .group_by(col(Checkin.ward))
            .order_by(col(Checkin.ward))
        )
        return [WardCheckins(w, n, int(worse or 0), r) for w, n, worse, r in self._rows(query)]

    def daily(self, boundaries: Sequence[datetime]) -> dict[int, int]:
        """Check-ins per day index between consecutive boundaries (the digest's chart)."""
        day = case(*[(col(Checkin.recorded_at) < _at(b), i) for i, b in enumerate(boundaries[1:])])
        inner = (
            select(day.label("day")).where(_recorded_in(boundaries[0], boundaries[-1])).subquery()
        )
        query = select(inner.c.day, func.count()).group_by(inner.c.day)
        return {int(d): n for d, n in self._rows(query)}

    def month_rows(self, start: datetime, end: datetime) -> Any:
        """The export's columns for check-ins recorded in [start, end): never an identifier."""
        query = (
            select(
                col(Checkin.ward),
                col(Checkin.recorded_at),
                col(Checkin.respondent),
                col(Checkin.not_asked_reason),
                col(Checkin.answer),
                col(Checkin.review_id),
            )
            .where(_recorded_in(start, end))
            .order_by(col(Checkin.recorded_at), col(Checkin.id))
        )
        return self.session.execute(query.execution_options(yield_per=1000))

    def _rows(self, query: Any) -> list[Any]:
        return list(self.session.execute(query).all())


def _at(moment: datetime) -> Any:
    return literal(moment, UTCDateTime())


def _recorded_in(start: datetime, end: datetime) -> Any:
    return (col(Checkin.recorded_at) >= _at(start)) & (col(Checkin.recorded_at) < _at(end))
