"""Retention's SQL: finding what is due for erasure, and erasing it in place.

Only identifiers and free text go; every column the digest and the export count stays (state,
times, ward, urgency, outcome, a transfer's destination), so their figures do not change.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, CursorResult, func, or_, select, update
from sqlmodel import Session, col

from storage.tables import Checkin, Outbox, Review, ReviewEvent

# Audit detail keys that carry what a person typed: a cancel reason, an outcome's note.
TYPED_DETAIL = ("reason", "detail")
ERASED_PAYLOAD = json.dumps({"text": "(erased under the retention policy)"})


class RetentionStore:
    def __init__(self, session: Session):
        self.session = session

    def due_reviews(self, cutoff: datetime) -> Sequence[int]:
        """Reviews closed or cancelled before `cutoff` whose identifiers are not yet erased."""
        query = select(col(Review.id)).where(
            col(Review.erased_at).is_(None),
            or_(col(Review.closed_at) < cutoff, col(Review.cancelled_at) < cutoff),
        )
        return list(self.session.execute(query).scalars().all())

    def due_checkins(self, cutoff: datetime) -> int:
        query = select(func.count()).select_from(Checkin).where(_checkin_due(cutoff))
        return int(self.session.execute(query).scalar_one())

    def erase_reviews(self, review_ids: Sequence[int], at: datetime) -> None:
        """Blank the reviews' identifiers and free text, their audit notes and their sent
        messages (cards and direct messages quote the concern and the call-back number)."""
        if not review_ids:
            return
        self.session.execute(
            update(Review)
            .where(col(Review.id).in_(review_ids))
            .values(
                nhs_number=None,
                callback_number=None,
                concern="",
                cancel_reason=None,
                patient_name=None,
                caller_name=None,
                relationship=None,
                erased_at=at,
            )
        )
        # A transfer's destination (ICU, HDU, CCU, theatre) is a figure, not free text.
        self.session.execute(
            update(Review)
            .where(col(Review.id).in_(review_ids), col(Review.outcome) != "transfer")
            .values(outcome_detail=None)
        )
        self._erase_event_notes(review_ids)
        # A message still unsent this long after its request closed is moot: it never goes.
        self.session.execute(
            update(Outbox)
            .where(col(Outbox.review_id).in_(review_ids), col(Outbox.state) == "pending")
            .values(state="dropped")
        )
        self.session.execute(
            update(Outbox)
            .where(col(Outbox.review_id).in_(review_ids))
            .values(payload=ERASED_PAYLOAD)
        )

    def erase_checkins(self, cutoff: datetime, at: datetime) -> int:
        """Blank the free text of check-ins recorded before `cutoff`; how many."""
        result = self.session.execute(
            update(Checkin).where(_checkin_due(cutoff)).values(worries=None, erased_at=at)
        )
        assert isinstance(result, CursorResult)  # an UPDATE's result counts its rows
        return int(result.rowcount or 0)

    def _erase_event_notes(self, review_ids: Sequence[int]) -> None:
        events = self.session.execute(
            select(ReviewEvent).where(
                col(ReviewEvent.review_id).in_(review_ids),
                col(ReviewEvent.kind).in_(("closed", "cancelled")),
            )
        ).scalars()
        for event in events:
            detail = json.loads(event.detail or "{}")
            if detail.get("outcome") == "transfer":
                detail.pop("reason", None)  # keep the destination the digest counts
            else:
                detail = {k: v for k, v in detail.items() if k not in TYPED_DETAIL}
            event.detail = json.dumps(detail, sort_keys=True)


def _checkin_due(cutoff: datetime) -> ColumnElement[bool]:
    return (col(Checkin.recorded_at) < cutoff) & col(Checkin.erased_at).is_(None)
