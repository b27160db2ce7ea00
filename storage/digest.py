"""The digest's and the export's SQL: counts, medians and 90th percentiles, in the database.

Every digest figure is "as known at the end of its window": an acknowledgement or outcome
recorded after the window closed does not count, so a digest rebuilt later for a past day says
what it said on the day. Durations are seconds. Percentiles interpolate between the two nearest
ranks (PostgreSQL's percentile_cont, spreadsheet PERCENTILE.INC), written with window functions
so SQLite and PostgreSQL give the same answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    select,
    type_coerce,
    union,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col
from sqlmodel.sql.sqltypes import UTCDateTime

from storage.tables import DigestRun, Outbox, Review, ReviewEvent
from storage.upsert import insert_for

OPEN = ("raised", "acknowledged", "attending")


@dataclass(frozen=True)
class Spread:
    """How long something took across `count` requests: median and 90th percentile, seconds."""

    count: int
    median: float | None
    p90: float | None


@dataclass(frozen=True)
class Timing:
    """One urgency's targets and how many requests missed them."""

    urgency: str
    raised: int
    acknowledged: int
    acknowledge_target: float | None  # seconds after raising
    acknowledge_missed: int
    attended: int
    attend_target: float | None  # seconds after acknowledging
    attend_missed: int


@dataclass(frozen=True)
class OpenRequest:
    review_id: int
    ward: str
    urgency: str
    state: str
    raised_at: datetime


class DigestStore:
    def __init__(self, session: Session):
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.runs = DigestRuns(session)

    def count_by(self, field: str, start: datetime, end: datetime) -> dict[str, int]:
        """Requests raised in [start, end) by caller, concern_kind, ward or urgency."""
        column = getattr(Review, field)
        return dict(self._grouped(column, where=raised_in(start, end)))

    def timings(self, start: datetime, end: datetime) -> list[Timing]:
        """Per urgency: how many were acknowledged and attended, and how many missed target."""
        ack, attended = _by(col(Review.acknowledged_at), end), _by(col(Review.attending_at), end)
        closed, cancelled = _by(col(Review.closed_at), end), _by(col(Review.cancelled_at), end)
        ack_target = self._policy_seconds("levels", 1, "after")
        attend_target = self._policy_seconds("attend_within")
        waited = self._seconds(col(Review.raised_at), func.coalesce(ack, cancelled, _at(end)))
        to_attend = self._seconds(ack, func.coalesce(attended, closed, cancelled, _at(end)))
        query = (
            select(
                col(Review.urgency),
                func.count(),
                func.count(ack),
                func.max(ack_target),
                _count_if(and_(ack_target.is_not(None), waited > ack_target)),
                func.count(attended),
                func.max(attend_target),
                _count_if(and_(ack.is_not(None), to_attend > attend_target)),
            )
            .where(raised_in(start, end))
            .group_by(col(Review.urgency))
            .order_by(col(Review.urgency))
        )
        return [Timing(*row) for row in self.session.execute(query).all()]

    def spreads(
        self, measure: str, start: datetime, end: datetime, *, per_urgency: bool = True
    ) -> dict[str, Spread]:
        """Time to `acknowledge` or `attend`, from raising, per urgency (or all as "*")."""
        moment = _by(
            col(Review.acknowledged_at) if measure == "acknowledge" else col(Review.attending_at),
            end,
        )
        group = col(Review.urgency) if per_urgency else literal("*")
        return self._spreads(
            group,
            self._seconds(col(Review.raised_at), moment),
            [raised_in(start, end), moment.is_not(None)],
        )

    def daily(
        self, boundaries: Sequence[datetime]
    ) -> tuple[dict[tuple[int, str], int], dict[int, Spread]]:
        """For the days between consecutive boundaries: requests by (day index, caller), and
        time to acknowledge per day index."""
        last = boundaries[-1]
        day = case(*[(col(Review.raised_at) < _at(b), i) for i, b in enumerate(boundaries[1:])])
        window = raised_in(boundaries[0], last)
        inner = (
            select(day.label("day"), col(Review.caller).label("caller")).where(window).subquery()
        )
        counts = select(inner.c.day, inner.c.caller, func.count()).group_by(
            inner.c.day, inner.c.caller
        )
        by_caller = {(d, c): n for d, c, n in self.session.execute(counts).all()}
        ack = _by(col(Review.acknowledged_at), last)
        spreads = self._spreads(
            day, self._seconds(col(Review.raised_at), ack), [window, ack.is_not(None)]
        )
        return by_caller, {int(k): v for k, v in spreads.items()}

    def outcomes(self, start: datetime, end: datetime) -> dict[tuple[str, str], int]:
        """What became of the requests raised in [start, end), as known at `end`:
        (outcome, transfer destination or "") -> count; outcome is also cancelled or open."""
        closed, cancelled = _by(col(Review.closed_at), end), _by(col(Review.cancelled_at), end)
        status = case(
            (closed.is_not(None), col(Review.outcome)),
            (cancelled.is_not(None), "cancelled"),
            else_="open",
        )
        where_to = case(
            (
                and_(closed.is_not(None), col(Review.outcome) == "transfer"),
                func.coalesce(col(Review.outcome_detail), ""),
            ),
            else_="",
        )
        inner = (
            select(status.label("status"), where_to.label("where_to"))
            .where(raised_in(start, end))
            .subquery()
        )
        query = select(inner.c.status, inner.c.where_to, func.count()).group_by(
            inner.c.status, inner.c.where_to
        )
        return {(s, w): n for s, w, n in self.session.execute(query).all()}

    def escalations(self, start: datetime, end: datetime) -> dict[int, int]:
        """Escalation level -> how many requests reached it in [start, end)."""
        level = self._json(col(ReviewEvent.detail))["level"].as_integer()
        inner = (
            select(level.label("level"), col(ReviewEvent.review_id).label("review_id"))
            .where(col(ReviewEvent.kind) == "escalated", _happened_in(start, end))
            .subquery()
        )
        query = select(inner.c.level, func.count(func.distinct(inner.c.review_id))).group_by(
            inner.c.level
        )
        return {int(lv): n for lv, n in self.session.execute(query).all()}

    def event_count(self, kind: str, start: datetime, end: datetime) -> int:
        query = (
            select(func.count())
            .select_from(ReviewEvent)
            .where(col(ReviewEvent.kind) == kind, _happened_in(start, end))
        )
        return int(self.session.execute(query).scalar_one())

    def texts(self, start: datetime, end: datetime) -> tuple[int, int]:
        """Texts and pages to on-call staff in [start, end): (sent, failed for good)."""
        sent = (
            select(func.count())
            .select_from(Outbox)
            .where(
                col(Outbox.kind) == "text",
                col(Outbox.state) == "sent",
                col(Outbox.sent_at) >= _at(start),
                col(Outbox.sent_at) < _at(end),
            )
        )
        kind = self._json(col(ReviewEvent.detail))["message_kind"].as_string()
        failed = (
            select(func.count())
            .select_from(ReviewEvent)
            .where(
                col(ReviewEvent.kind) == "delivery_failed", kind == "text", _happened_in(start, end)
            )
        )
        return (
            int(self.session.execute(sent).scalar_one()),
            int(self.session.execute(failed).scalar_one()),
        )

    def open_at(self, end: datetime, limit: int) -> tuple[int, list[OpenRequest]]:
        """Requests still open at `end` (however old): how many, and the oldest `limit`."""
        # Each branch of the union has its own index; one OR would scan every review ever raised.
        candidates = union(
            select(col(Review.id)).where(col(Review.state).in_(OPEN)),
            select(col(Review.id)).where(col(Review.closed_at) >= _at(end)),
            select(col(Review.id)).where(col(Review.cancelled_at) >= _at(end)),
        ).subquery()
        still_open = and_(
            col(Review.id).in_(select(candidates.c.id)), col(Review.raised_at) < _at(end)
        )
        total = self.session.execute(
            select(func.count()).select_from(Review).where(still_open)
        ).scalar_one()
        state = case(
            (col(Review.attending_at) < _at(end), "attending"),
            (col(Review.acknowledged_at) < _at(end), "acknowledged"),
            else_="raised",
        )
        query = (
            select(
                col(Review.id), col(Review.ward), col(Review.urgency), state, col(Review.raised_at)
            )
            .where(still_open)
            .order_by(col(Review.raised_at), col(Review.id))
            .limit(limit)
        )
        return int(total), [OpenRequest(*row) for row in self.session.execute(query).all()]

    def _grouped(self, column: Any, *, where: ColumnElement[bool]) -> list[Any]:
        query = select(column, func.count()).where(where).group_by(column)
        return list(self.session.execute(query).all())

    def _spreads(
        self, group: Any, seconds: Any, where: list[ColumnElement[bool]]
    ) -> dict[str, Spread]:
        ranked = (
            select(
                group.label("grp"),
                seconds.label("secs"),
                func.row_number().over(partition_by=group, order_by=seconds).label("rn"),
                func.count().over(partition_by=group).label("n"),
            )
            .where(*where)
            .subquery()
        )
        query = select(
            ranked.c.grp,
            func.max(ranked.c.n),
            _percentile(ranked.c, 50),
            _percentile(ranked.c, 90),
        ).group_by(ranked.c.grp)
        return {
            str(g): Spread(int(n), _num(p50), _num(p90))
            for g, n, p50, p90 in self.session.execute(query).all()
        }

    def _seconds(self, start: Any, stop: Any) -> ColumnElement[float]:
        return seconds_between(start, stop, postgres=self.postgres)

    def _json(self, column: Any) -> Any:
        # PostgreSQL needs a real cast from text; SQLite's CAST(... AS JSON) would make a number.
        return cast(column, JSON) if self.postgres else type_coerce(column, JSON)

    def _policy_seconds(self, *path: str | int) -> ColumnElement[float]:
        return self._json(col(Review.policy))[path].as_float()


def seconds_between(start: Any, stop: Any, *, postgres: bool) -> ColumnElement[float]:
    """Seconds from `start` to `stop`. SQLite's julianday() is exact to the millisecond, but a
    difference of two day numbers near 2.46 million is not: 300 s came out 300.00001 about half
    the time, a target met to the second counted as missed and 4 min 9 s as 4.1 minutes. Rounding
    to the millisecond gives back what was stored, as PostgreSQL's epoch difference does."""
    if postgres:
        return cast(extract("epoch", stop - start), Float)
    return func.round((func.julianday(stop) - func.julianday(start)) * 86400.0, 3)


def _percentile(ranked: Any, percent: int) -> ColumnElement[float]:
    # Rank position (0-based) is percent% of (n - 1): its whole part picks the lower row and the
    # remainder weights the next one. Integer // and % mean the same on both databases.
    position = (ranked.n - 1) * percent
    lower, weight = position // 100, (position % 100) * 0.01
    return func.sum(
        case(
            (ranked.rn - 1 == lower, ranked.secs * (1 - weight)),
            (ranked.rn - 1 == lower + 1, ranked.secs * weight),
            else_=0.0,
        )
    )


def _at(moment: datetime) -> Any:
    return literal(moment, UTCDateTime())


def _by(column: Any, end: datetime) -> Any:
    """The column's time if it happened before `end`, else NULL."""
    return case((col(column) < _at(end), column), else_=None)


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def raised_in(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(col(Review.raised_at) >= _at(start), col(Review.raised_at) < _at(end))


def _happened_in(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(col(ReviewEvent.at) >= _at(start), col(ReviewEvent.at) < _at(end))


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


class DigestRuns:
    """Who posted which day's digest where: UNIQUE (day, destination) lets one replica post."""

    def __init__(self, session: Session):
        self.session = session

    def claim(self, *, day: date, destination: str, at: datetime, late: bool) -> bool:
        """True if this transaction claimed the day for the destination; False if taken.
        On PostgreSQL a concurrent claimant waits for the first to commit, then gets False."""
        statement = (
            insert_for(self.session)(DigestRun)
            .values(day=day, destination=destination, claimed_at=at, late=late)
            .on_conflict_do_nothing(index_elements=["day", "destination"])
        )
        # RETURNING, not rowcount: an ORM session reports rowcount -1 for this on PostgreSQL.
        return self.session.execute(statement.returning(col(DigestRun.id))).first() is not None

    def claimed(self, day: date) -> set[str]:
        query = select(col(DigestRun.destination)).where(col(DigestRun.day) == day)
        return set(self.session.execute(query).scalars().all())
