"""Queries on reviews."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, func
from sqlmodel import Session, col, select

from storage.tables import Review

OPEN = ("raised", "acknowledged", "attending")
# Asked before every request is raised, and almost always finds nothing: only the id, past the
# ORM, which cost a sixth of a raise's CPU to load no row.
ID_BY_SUBMISSION_KEY = select(Review.id).where(Review.submission_key == bindparam("key"))


class ReviewStore:
    def __init__(self, session: Session):
        self.session = session

    def add(self, review: Review) -> Review:
        self.session.add(review)
        self.session.flush()
        return review

    def get(self, review_id: int, *, for_update: bool = False) -> Review | None:
        query = select(Review).where(Review.id == review_id)
        if for_update:
            query = query.with_for_update()
        return self.session.exec(query).first()

    def lock_if_free(self, review_id: int) -> Review | None:
        """The review, locked for this transaction; None if another transaction holds it
        (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers)."""
        query = select(Review).where(Review.id == review_id).with_for_update(skip_locked=True)
        return self.session.exec(query).first()

    def by_submission_key(self, key: str) -> Review | None:
        found = self.session.connection().execute(ID_BY_SUBMISSION_KEY, {"key": key}).first()
        return None if found is None else self.session.get(Review, found.id)

    def open_reviews(self, limit: int = 50) -> Sequence[Review]:
        query = (
            select(Review)
            .where(col(Review.state).in_(OPEN))
            .order_by(col(Review.raised_at), col(Review.id))
            .limit(limit)
        )
        return self.session.exec(query).all()

    def count_open(self) -> int:
        query = select(func.count()).select_from(Review).where(col(Review.state).in_(OPEN))
        return self.session.exec(query).one()

    def raised_by(self, platform: str, user: str, limit: int = 10) -> Sequence[Review]:
        query = (
            select(Review)
            .where(Review.raised_platform == platform, Review.raised_by == user)
            .order_by(col(Review.raised_at).desc())
            .limit(limit)
        )
        return self.session.exec(query).all()

    def claim_due_escalations(self, now: datetime, limit: int) -> Sequence[Review]:
        """Unacknowledged reviews whose next level is due, locked for this transaction.

        PostgreSQL skips rows another replica holds; SQLite's BEGIN IMMEDIATE already
        serialises writers.
        """
        query = (
            select(Review)
            .where(Review.state == "raised", col(Review.next_escalation_at) <= now)
            .order_by(col(Review.next_escalation_at))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self.session.exec(query).all()

    def claim_due_attend_reminders(self, now: datetime, limit: int) -> Sequence[Review]:
        query = (
            select(Review)
            .where(Review.state == "acknowledged", col(Review.next_attend_reminder_at) <= now)
            .order_by(col(Review.next_attend_reminder_at))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self.session.exec(query).all()
