"""The figures GET /metrics serves that must agree across replicas, read at scrape time.

Each is one grouped query over an indexed column or a small table (the outbox by state).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from storage.digest import DigestStore, seconds_between
from storage.reviews import OPEN
from storage.tables import Outbox, Review

# Seconds from raised to acknowledged: a minute up to two hours (the ladder's span and more).
ACKNOWLEDGE_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0)
EVER = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))


@dataclass(frozen=True)
class Figures:
    raised: dict[tuple[str, str], int]  # (caller, source) -> requests ever raised
    open_requests: int
    acknowledged: list[tuple[float, int]]  # cumulative (upper bound in seconds, requests)
    acknowledged_count: int
    acknowledged_seconds: float
    escalations: dict[int, int]  # level -> requests that reached it
    outbox: dict[str, int]  # state -> messages
    texts: dict[tuple[str, str], int]  # (notify | pager, sent | failed) -> texts and pages


class MetricsStore:
    def __init__(self, session: Session):
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"

    def figures(self, buckets: Sequence[float] = ACKNOWLEDGE_BUCKETS) -> Figures:
        count, total, below = self._acknowledge_times(buckets)
        return Figures(
            raised=self._raised(),
            open_requests=self._count_open(),
            acknowledged=list(zip(buckets, below, strict=True)),
            acknowledged_count=count,
            acknowledged_seconds=total,
            escalations=DigestStore(self.session).escalations(*EVER),
            outbox={
                state: n
                for state, n in self.session.exec(
                    select(Outbox.state, func.count()).group_by(col(Outbox.state))
                ).all()
            },
            texts=self._texts(),
        )

    def _texts(self) -> dict[tuple[str, str], int]:
        query = (
            select(col(Outbox.platform), col(Outbox.state), func.count())
            .where(col(Outbox.kind) == "text", col(Outbox.state).in_(("sent", "failed")))
            .group_by(col(Outbox.platform), col(Outbox.state))
        )
        return {(via, state): n for via, state, n in self.session.execute(query).all()}

    def _raised(self) -> dict[tuple[str, str], int]:
        # A chat form's source is the platform it came through (slack, teams, shell).
        source = case(
            (col(Review.source) == "form", col(Review.raised_platform)), else_=col(Review.source)
        )
        query = select(col(Review.caller), source, func.count()).group_by(
            col(Review.caller), source
        )
        return {(caller, src): n for caller, src, n in self.session.execute(query).all()}

    def _count_open(self) -> int:
        query = select(func.count()).select_from(Review).where(col(Review.state).in_(OPEN))
        return int(self.session.execute(query).scalar_one())

    def _acknowledge_times(self, buckets: Sequence[float]) -> tuple[int, float, list[int]]:
        raised, acknowledged = col(Review.raised_at), col(Review.acknowledged_at)
        seconds = seconds_between(raised, acknowledged, postgres=self.postgres)
        query = select(
            func.count(),
            func.coalesce(func.sum(seconds), 0.0),
            *(func.coalesce(func.sum(case((seconds <= b, 1), else_=0)), 0) for b in buckets),
        ).where(acknowledged.is_not(None))
        count, total, *below = self.session.execute(query).one()
        return int(count), float(total), [int(n) for n in below]
