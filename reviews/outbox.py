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
from datetime import datetime, timedelta
from typing import Protocol

from reviews import escalation, fallback, notify
from reviews.context import Services
from reviews.messages import Message
from reviews.model import format_reference
from storage.database import UnitOfWork
from storage.tables import Outbox

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
BATCH_TIME = 20.0  # seconds a drainer may spend on one claimed batch; well inside LEASE
MAX_ATTEMPTS = 8
MAX_BACKOFF = 300.0
CREDENTIALS_RETRY = timedelta(seconds=30)  # how often a platform refusing the bot is tried again


class DeliveryError(Exception):
    """A send that did not go. `retry_after` from the platform (429) wins over our backoff.

    `permanent`: this message can never go (a channel that does not exist). `credentials`: the
    platform refuses the bot itself (a revoked token, an expired secret); no message can go
    until a person fixes it, and then every one should, so the message waits.
    """

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        credentials: bool = False,
    ):
        super().__init__(reason)
        self.retry_after = retry_after
        self.permanent = permanent
        self.credentials = credentials


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
        now = services.clock.now()
        # A platform refusing our credentials is tried with one message every so often,
        # not with each of its messages on every tick.
        platforms = [p for p in senders if services.health.may_send(p, now)]
        batch = _claim(services, platforms, limit) if platforms else []
        if not batch:
            return handled
        claimed_at = time.monotonic()
        stalled: set[tuple[str, str]] = set()
        unsent: list[int] = []
        for row in batch:
            destination = (row.platform, row.address)
            # Stop well inside the lease, so no other drainer can take a row we still hold.
            if (
                destination in stalled
                or time.monotonic() - claimed_at > BATCH_TIME
                or not services.health.may_send(row.platform, now)
            ):
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
        if services.health.platform_ok(row.platform) is not None:
            log.warning("%s: messages go out again", row.platform)
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
        if error.credentials:
            _hold_for_credentials(uow, services, stored, error)
            return
        if error.permanent or stored.attempts >= MAX_ATTEMPTS:
            stored.state = "failed"
            log.error(
                "outbox %s (%s to %s%s) failed: %s",
                row.id,
                row.kind,
                row.platform,
                _about(row),
                error,
            )
            uow.events.record(
                review_id=row.review_id,
                kind="delivery_failed",
                at=now,
                outbox_id=row.id,
                platform=row.platform,
                message_kind=row.kind,
                error=str(error)[:200],
            )
            _undeliverable(uow, services, stored)
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
            "outbox %s%s: attempt %s failed (%s); retry in %.0fs",
            row.id,
            _about(row),
            stored.attempts,
            error,
            delay,
        )


def _hold_for_credentials(
    uow: UnitOfWork, services: Services, row: Outbox, error: DeliveryError
) -> None:
    """Keep the message (uncounted) until the platform takes the bot's credentials again."""
    row.state = "pending"
    row.next_attempt_at = services.clock.now() + CREDENTIALS_RETRY
    row.attempts = max(row.attempts - 1, 0)
    credentials_refused(uow, services, row.platform, error, retry_at=row.next_attempt_at)


def credentials_refused(
    uow: UnitOfWork, services: Services, platform: str, error: DeliveryError, *, retry_at: datetime
) -> None:
    """Raise the alarm that `platform` refuses the bot: /healthz, the log at ERROR once per
    outage, and every other platform's digest channel (the refusing one cannot carry it), once
    an hour across replicas while it lasts."""
    now = services.clock.now()
    if services.health.credentials_refused(platform, str(error), retry_at=retry_at):
        log.error(
            "%s refuses the bot's credentials (%s): messages to %s wait until they are fixed",
            platform,
            error,
            platform,
        )
    others = tuple(route for route in services.routes if route.platform != platform)
    notify.to_digest_channel(
        uow,
        others,
        key=f"credentials:{platform}:{now:%Y-%m-%dT%H}",
        at=now,
        message=Message(
            text=f"{platform.capitalize()} refuses the bot's credentials ({error}): nothing "
            "can be posted there until IT fixes them, and requests raised there may not reach "
            "the outreach team. Held messages go once it works again. Meanwhile, bleep the "
            "outreach team for anything urgent."
        ),
    )


def check_platforms(services: Services, senders: Mapping[str, Sender]) -> None:
    """Ask each platform that can be asked (a sender with `check()`) whether it takes the
    bot's credentials, so a revoked token or an unreachable platform shows in /healthz and the
    log before a request needs it. DatabaseUnavailable if the alarm cannot be queued."""
    for platform, sender in senders.items():
        check = getattr(sender, "check", None)
        if check is None:
            continue
        try:
            check()
        except DeliveryError as error:
            if error.credentials:
                with services.db.unit_of_work() as uow:
                    credentials_refused(
                        uow, services, platform, error, retry_at=services.clock.now()
                    )
            elif services.health.unreachable(platform, str(error)):
                log.error(
                    "%s cannot be reached (%s); everything else carries on and messages to "
                    "%s wait; trying again every minute",
                    platform,
                    error,
                    platform,
                )
            continue
        if services.health.platform_ok(platform) is not None:
            log.warning("%s: reachable and accepting the bot's credentials again", platform)


def _undeliverable(uow: UnitOfWork, services: Services, row: Outbox) -> None:
    """A message that will never go: what follows from that. A direct message's text or page
    is due at once; and when nobody at an escalation level could be reached, the ladder moves
    on at once."""
    now = services.clock.now()
    fallback.undelivered(uow, row, now)
    if row.kind == "direct" and row.review_id is not None and row.key.startswith("esc:"):
        _, _, level, repeat = row.key.split(":", 4)[:4]
        escalation.nobody_reached(uow, services, row.review_id, int(level), int(repeat), now)


def _about(row: Outbox) -> str:
    return f" about {format_reference(row.review_id)}" if row.review_id is not None else ""


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


def backoff(attempts: int) -> float:
    """Seconds before the next try: 1, 2, 4 ... capped at five minutes."""
    return float(min(2 ** max(attempts - 1, 0), MAX_BACKOFF))
