"""What the public pages read and write: the shared key, the per-address count, status links."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, text
from sqlmodel import Session, col, select

from storage.tables import AppSecret, Review, WebSubmission
from storage.upsert import insert_for


class WebStore:
    def __init__(self, session: Session):
        self.session = session

    def secret(self, name: str, candidate: str) -> str:
        """The key stored under `name`; `candidate` becomes it if there is none yet. Replicas
        racing to create it all end up with the one that was stored first."""
        self.session.execute(
            insert_for(self.session)(AppSecret)
            .values(name=name, value=candidate)
            .on_conflict_do_nothing()
        )
        return self.session.exec(select(AppSecret.value).where(AppSecret.name == name)).one()

    def count_submissions(self, address: str, since: datetime) -> int:
        """How many from `address` since `since`. On PostgreSQL the count holds a lock on the
        address until commit, so two replicas cannot both see 4 and both record a sixth.
        (SQLite's transactions are already one at a time.)"""
        if self.session.get_bind().dialect.name == "postgresql":
            lock = int(address[:15], 16)  # 60 bits of the hash: fits a bigint
            self.session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": lock})
        query = select(func.count()).where(
            WebSubmission.address == address, col(WebSubmission.at) >= since
        )
        return self.session.exec(query).one()

    def record_submission(self, address: str, at: datetime, forget_before: datetime) -> None:
        """Count one more from `address`, and forget counts older than `forget_before`."""
        self.session.execute(delete(WebSubmission).where(col(WebSubmission.at) < forget_before))
        self.session.add(WebSubmission(address=address, at=at))

    def review_by_status_token(self, token: str) -> Review | None:
        return self.session.exec(select(Review).where(Review.status_token == token)).first()
