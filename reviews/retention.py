"""Retention: RETENTION_DAYS after a request closes (or a check-in is recorded), its patient
identifiers and free text are erased, and an audit event says how many and up to when.

The daily job runs on every replica; a digest_run row per day lets one of them do it. `python
bot.py retention` only counts; `--apply` erases.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from reviews.context import Services
from storage.database import UnitOfWork
from storage.retention import RetentionStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Erasure:
    cutoff: datetime  # closed or recorded before this
    reviews: int
    checkins: int
    applied: bool

    def line(self, services: Services) -> str:
        """What was (or would be) erased, as one line for an operator."""
        before = self.cutoff.astimezone(services.timezone).strftime("%H:%M %a %d %b %Y")
        days = services.retention_days
        what = (
            f"{self.reviews} request{'s' * (self.reviews != 1)} closed or cancelled and "
            f"{self.checkins} check-in{'s' * (self.checkins != 1)} recorded before {before} "
            f"({days} day{'s' * (days != 1)} ago)"
        )
        if self.applied:
            return f"Erased the patient identifiers and free text of {what}."
        return (
            f"{what[0].upper()}{what[1:]} still hold patient identifiers or free text; "
            "run with --apply to erase them."
        )


def erase(*, services: Services, apply: bool) -> Erasure:
    """Count (and with `apply`, erase) what RETENTION_DAYS says must go. DatabaseUnavailable
    if the database cannot be reached."""
    now = services.clock.now()
    with services.db.unit_of_work() as uow:
        return _erase(uow, services, now, apply)


def retention_job(services: Services) -> bool:
    """Erase what is due, once a day across replicas; True if this replica did it today."""
    now = services.clock.now()
    today = now.astimezone(services.timezone).date()
    with services.db.unit_of_work() as uow:
        if not uow.digest.runs.claim(day=today, destination="retention", at=now, late=False):
            return False
        _erase(uow, services, now, apply=True)
    return True


def _erase(uow: UnitOfWork, services: Services, now: datetime, apply: bool) -> Erasure:
    cutoff = now - timedelta(days=services.retention_days)
    store = RetentionStore(uow.session)
    reviews = store.due_reviews(cutoff)
    checkins = store.due_checkins(cutoff)
    erasure = Erasure(cutoff, len(reviews), checkins, apply)
    if not apply:
        return erasure
    store.erase_reviews(reviews, now)
    store.erase_checkins(cutoff, now)
    uow.events.record(
        review_id=None,
        kind="retention_erased",
        at=now,
        reviews=len(reviews),
        checkins=checkins,
        cutoff=cutoff.isoformat(),
        retention_days=services.retention_days,
    )
    log.info("retention: erased %s requests and %s check-ins", len(reviews), checkins)
    return erasure
