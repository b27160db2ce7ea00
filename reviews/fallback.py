"""Texts and pages to on-call staff: when a level asks for them, and when chat was not enough.

A text goes to a role holder (CONTRACT.md "Text messages and pages to on-call staff"):
- with the direct message, when the level says `sms = true`;
- at once, when their direct message failed or was still not sent 60 s after it was due;
- when their direct message went but nobody acknowledged within `[fallback] after`.
Every one is queued under the key esc:REVIEW:LEVEL:REPEAT:PERSON:text, so whichever of these
fires first (on whichever replica) sends it and the others find the key taken. Acknowledging
drops unsent esc: rows, texts included, so an acknowledged request sends nothing more.

Each escalation direct message carries `follow_up_at`: when to look at it next (60 s after it
was queued; the moment it is sent; at once when it fails for good). follow_up() looks (every
sweep, on every replica) and either queues the text, moves the moment on, or clears it once
nothing more can be owed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from functools import partial

from reviews.context import Services
from reviews.isolation import isolated
from reviews.messages import Message
from reviews.model import State, format_reference
from reviews.notify import person_address
from reviews.policy import Ladder
from reviews.texts import destination, text_for
from storage.database import UnitOfWork
from storage.tables import Outbox, Review, Staff

log = logging.getLogger(__name__)

UNDELIVERED_AFTER = timedelta(seconds=60)
BROKEN_RETRY = timedelta(minutes=1)  # a follow-up that failed is looked at again this much later
TEXT = "text"  # the outbox kind of a text or page


def text_key(review_id: int, level: int, repeat: int, person_id: int) -> str:
    return f"esc:{review_id}:{level}:{repeat}:{person_id}:{TEXT}"


def queue_text(
    uow: UnitOfWork,
    services: Services,
    review: Review,
    person: Staff,
    level: int,
    repeat: int,
    now: datetime,
) -> bool:
    """Queue one text or page to `person` about this level; False if they cannot be texted or
    were texted about it already."""
    assert review.id is not None and person.id is not None
    found = destination(person, services.texting)
    if found is None:
        return False
    platform, number = found
    platforms = tuple(route.platform for route in services.routes)
    return uow.outbox.enqueue(
        key=text_key(review.id, level, repeat, person.id),
        platform=platform,
        kind=TEXT,
        address=number,
        payload=Message(text=text_for(review, level, platforms), level=level).to_json(),
        at=now,
        review_id=review.id,
    )


def text_holders(
    uow: UnitOfWork,
    services: Services,
    review: Review,
    people: Iterable[Staff],
    level: int,
    repeat: int,
    now: datetime,
) -> int:
    """Text each of `people` about this level once; how many texts were queued."""
    if not services.texting:
        return 0
    return sum(queue_text(uow, services, review, p, level, repeat, now) for p in people)


def level_fired(
    uow: UnitOfWork,
    services: Services,
    review: Review,
    ladder: Ladder,
    index: int,
    repeat: int,
    holders: Callable[[str], Sequence[Staff]],
    now: datetime,
) -> None:
    """After a level's direct messages are queued: text its holders if the level says
    `sms = true` (else only those no chat platform reaches), and watch the direct messages."""
    if not services.texting:
        return
    assert review.id is not None
    # Looked at again when each goes (mark_sent), to time the fallback from that moment.
    uow.outbox.watch_direct(
        key_prefix=f"esc:{review.id}:{index}:{repeat}:", at=now + UNDELIVERED_AFTER
    )
    people = list({p.id: p for role in ladder.levels[index].notify for p in holders(role)}.values())
    if not ladder.levels[index].sms:
        people = [p for p in people if not any(person_address(r, p) for r in services.routes)]
    text_holders(uow, services, review, people, index, repeat, now)


def undelivered(uow: UnitOfWork, row: Outbox, now: datetime) -> None:
    """A direct message failed for good: its follow-up (the text) is due at once."""
    if row.follow_up_at is not None:
        row.follow_up_at = now


def follow_up(services: Services, *, batch: int = 100) -> int:
    """Queue the texts owed for direct messages whose follow-up is due; how many were queued.

    DatabaseUnavailable if the database cannot be reached.
    """
    if not services.texting:
        return 0
    now = services.clock.now()
    queued = 0
    while True:
        with services.db.unit_of_work() as uow:
            due = uow.outbox.claim_follow_ups(now, batch)
            outcomes = [_isolated_follow_up(uow, services, row, now) for row in due]
        queued += outcomes.count(True)
        # A row whose review was busy stays due: looping on would only claim it again.
        if len(due) < batch or None in outcomes:
            return queued


def _isolated_follow_up(
    uow: UnitOfWork, services: Services, row: Outbox, now: datetime
) -> bool | None:
    """_follow_up in a savepoint: one request that cannot be followed up (a damaged snapshot)
    stopped every other request's texts. Its row is looked at again in a minute."""
    outcome: list[bool | None] = []
    step = lambda: outcome.append(_follow_up(uow, services, row, now))  # noqa: E731
    if isolated(uow, services, row.review_id, step, doing="followed by a text or page"):
        return outcome[0]
    row.follow_up_at = now + BROKEN_RETRY
    return None


def _follow_up(uow: UnitOfWork, services: Services, row: Outbox, now: datetime) -> bool | None:
    """True if a text was queued, False if none is owed now; None if the review is busy."""
    review = uow.reviews.lock_if_free(row.review_id or 0)
    if review is None:
        return None  # another replica or an acknowledgement holds it: look again next tick
    if review.state != State.RAISED or row.state == "dropped":
        row.follow_up_at = None
        return False
    if row.state != "failed":
        later = _next_look(row, Ladder.from_json(review.policy))
        if later is None or later > now:
            row.follow_up_at = later
            return False
    row.follow_up_at = None
    _, review_id, level, repeat, person_id, _platform = row.key.split(":")
    person = uow.rota.staff(int(person_id))
    if person is None or not queue_text(
        uow, services, review, person, int(level), int(repeat), now
    ):
        return False
    why = "failed" if row.state == "failed" else "unacknowledged" if row.sent_at else "not sent"
    uow.on_commit.append(
        partial(
            log.info,
            "%s: text for level %s after a direct message on %s (%s)",
            format_reference(review.id or 0),
            level,
            row.platform,
            why,
        )
    )
    return True


def _next_look(row: Outbox, ladder: Ladder) -> datetime | None:
    """When a direct message still waiting (or sent) next needs a text; None: never."""
    if row.sent_at is None:
        return row.created_at + UNDELIVERED_AFTER
    if ladder.fallback_after is None:
        return None
    return row.sent_at + ladder.fallback_after
