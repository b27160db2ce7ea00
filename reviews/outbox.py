"""Delivering queued messages through each platform's sender, with retries.

A row is claimed under a lease, sent outside any transaction, then marked sent. If the process
dies between the send and the mark, the lease runs out and the row is sent again: delivery is
at-least-once at that one point, exactly-once everywhere else (the UNIQUE key stops doubles).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from reviews import fallback, notify
from reviews.context import Services
from reviews.messages import Message
from reviews.model import format_reference
from storage.tables import Outbox

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
BATCH_TIME = 20.0  # seconds a drainer may spend on one claimed batch; well inside LEASE
MAX_ATTEMPTS = 8
MAX_BACKOFF = 300.0


class DeliveryError(Exception):
    """A send that did not go. `retry_after` from the platform (429) wins over our backoff."""

    def __init__(self, reason: str, *, retry_after: float | None = None, permanent: bool = False):
        super().__init__(reason)
        self.retry_after = retry_after
        self.permanent = permanent


@dataclass(frozen=True)
class OutboundItem:
    kind: str  # card, card_update, thread, direct, channel
    address: str
    message: Message
    card_id: str | None  # the card's message id in `address`, for card_update and thread
    review_id: int | None


class Sender(Protocol):
    def deliver(self, item: OutboundItem) -> str | None:
        """Send one item; return the platform's message id. Raise DeliveryError to retry."""
        ...


def drain(services: Services, senders: Mapping[str, Sender], *, limit: int = 50) -> int:
    """Send what is due, batch after batch, until nothing is; the number of rows handled.

    Within a batch each destination's messages go in order; after one fails, the rest of that
    destination's wait for its retry. DatabaseUnavailable if the database cannot be reached.
    """
    handled = 0
    while True:
        batch = _claim(services, list(senders), limit)
        if not batch:
            return handled
        claimed_at = time.monotonic()
        stalled: set[tuple[str, str]] = set()
        unsent: list[int] = []
        for row in batch:
            destination = (row.platform, row.address)
            # Stop well inside the lease, so no other drainer can take a row we still hold.
            if destination in stalled or time.monotonic() - claimed_at > BATCH_TIME:
                unsent.append(row.id or 0)
            elif not _deliver(services, senders[row.platform], row):
                stalled.add(destination)
        if unsent:
            with services.db.unit_of_work() as uow:
                uow.outbox.release(unsent, now=services.clock.now())
        handled += len(batch) - len(unsent)


def recover(services: Services) -> int:
    """At start-up: messages a killed predecessor had claimed but not sent go at once, instead
    of after their lease. SQLite only, where one process is the only drainer; on PostgreSQL
    another replica may be sending them right now, so their leases stand."""
    if not services.db.is_sqlite:
        return 0
    with services.db.unit_of_work() as uow:
        released = uow.outbox.release_all_sending(now=services.clock.now())
    if released:
        log.warning("outbox: %s message(s) claimed before a restart will be sent now", released)
    return released


def _claim(services: Services, platforms: list[str], limit: int) -> list[Outbox]:
    with services.db.unit_of_work() as uow:
        return list(
            uow.outbox.claim(
                now=services.clock.now(), lease=LEASE, limit=limit, platforms=platforms
            )
        )


def _item(services: Services, row: Outbox) -> OutboundItem:
    """The row as a sender sees it. A card's id is read now, not at claim time: the card may
    have been posted earlier in this very batch."""
    card = None
    if row.kind in ("card_update", "thread") and row.review_id is not None:
        with services.db.unit_of_work() as uow:
            card = uow.outbox.card(row.review_id, row.platform, row.address)
    return OutboundItem(
        kind=row.kind,
        address=row.address,
        message=Message.from_json(row.payload),
        card_id=card.message_id if card else None,
        review_id=row.review_id,
    )


def _deliver(services: Services, sender: Sender, row: Outbox) -> bool:
    """Send one row and record the result; False if it did not go."""
    try:
        item = _item(services, row)
    except Exception as error:  # noqa: BLE001 - any payload we cannot read: JSON, shape, fields
        # A payload we cannot read never will be: fail it (and report it) rather than let it
        # be claimed again forever, holding up every later message to that destination.
        log.error("outbox %s: unreadable payload (%s)", row.id, type(error).__name__)
        _record_failure(services, row, DeliveryError("unreadable payload", permanent=True))
        return False
    try:
        message_id = sender.deliver(item)
    except DeliveryError as error:
        _record_failure(services, row, error)
        return False
    except Exception as error:  # noqa: BLE001 - a sender bug must not stop other deliveries
        log.exception("outbox %s: sender raised", row.id)
        _record_failure(services, row, DeliveryError(type(error).__name__))
        return False
    with services.db.unit_of_work() as uow:
        uow.outbox.mark_sent(row.id or 0, at=services.clock.now(), message_id=message_id)
        if (
            message_id
            and item.review_id is not None
            and (row.kind == "card" or (row.kind == "card_update" and item.card_id is None))
        ):
            uow.outbox.save_card(item.review_id, row.platform, row.address, message_id)
    return True


def _record_failure(services: Services, row: Outbox, error: DeliveryError) -> None:
    now = services.clock.now()
    with services.db.unit_of_work() as uow:
        stored = uow.outbox.get(row.id or 0)
        assert stored is not None
        stored.last_error = str(error)[:500]
        if stored.state == "dropped":
            return  # the review was acknowledged or closed meanwhile: no retry wanted
        if error.permanent or stored.attempts >= MAX_ATTEMPTS:
            stored.state = "failed"
            fallback.undelivered(uow, stored, now)
            log.error("outbox %s (%s to %s) failed: %s", row.id, row.kind, row.platform, error)
            uow.events.record(
                review_id=row.review_id,
                kind="delivery_failed",
                at=now,
                outbox_id=row.id,
                platform=row.platform,
                message_kind=row.kind,
                error=str(error)[:200],
            )
            if not row.key.startswith("failure:"):
                notify.to_digest_channel(
                    uow,
                    services.routes,
                    key=f"failure:{row.id}",
                    at=now,
                    review_id=row.review_id,
                    message=Message(
                        text=f"A {row.kind} message on {row.platform}{_about(row)} could not "
                        f"be delivered after {_attempts(stored.attempts)}: {error}"
                    ),
                )
            return
        delay = error.retry_after if error.retry_after is not None else backoff(stored.attempts)
        stored.state = "pending"
        stored.next_attempt_at = now + timedelta(seconds=delay)
        log.warning(
            "outbox %s: attempt %s failed (%s); retry in %.0fs",
            row.id,
            stored.attempts,
            error,
            delay,
        )


def _about(row: Outbox) -> str:
    return f" about {format_reference(row.review_id)}" if row.review_id is not None else ""


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


def backoff(attempts: int) -> float:
    """Seconds before the next try: 1, 2, 4 ... capped at five minutes."""
    return float(min(2 ** max(attempts - 1, 0), MAX_BACKOFF))
