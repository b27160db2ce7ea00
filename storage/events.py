"""The append-only audit trail."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from storage.tables import ReviewEvent

# Past the ORM, as the outbox's writes are: every request raised, level fired and button pressed
# writes one or two events, and the ORM's flush of each cost more CPU than its INSERT.
RECORD = insert(ReviewEvent)


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
    ) -> None:
        """Append an event now, on this transaction's connection (so `review_id` must be a row
        already flushed: a review the caller holds has its id only once it is)."""
        self.session.connection().execute(
            RECORD,
            {
                "review_id": review_id,
                "kind": kind,
                "at": at,
                "actor": actor,
                "actor_id": actor_id,
                "platform": platform,
                "detail": json.dumps(detail, default=str, sort_keys=True),
            },
        )

    def for_review(self, review_id: int) -> Sequence[ReviewEvent]:
        query = (
            select(ReviewEvent)
            .where(ReviewEvent.review_id == review_id)
            .order_by(col(ReviewEvent.id))
        )
        return self.session.exec(query).all()
