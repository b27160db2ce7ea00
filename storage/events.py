"""The append-only audit trail."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from storage.tables import ReviewEvent


class EventLog:
    def __init__(self, session: Session):
        self.session = session

    def record(
        self,
        *,
        review_id: int | None,
        kind: str,
        at: datetime,
        actor: str = "system",
        actor_id: str | None = None,
        platform: str = "system",
        **detail: Any,
    ) -> ReviewEvent:
        event = ReviewEvent(
            review_id=review_id,
            kind=kind,
            at=at,
            actor=actor,
            actor_id=actor_id,
            platform=platform,
            detail=json.dumps(detail, default=str, sort_keys=True),
        )
        self.session.add(event)
        return event

    def for_review(self, review_id: int) -> Sequence[ReviewEvent]:
        query = (
            select(ReviewEvent)
            .where(ReviewEvent.review_id == review_id)
            .order_by(col(ReviewEvent.id))
        )
        return self.session.exec(query).all()
