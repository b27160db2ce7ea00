"""The family's call-back number: sent privately to whoever takes a request, never shown on
the card; sent again to whoever moves the request on when every private message giving it failed
for good, and the outreach channel's thread told (without the number) each time one fails."""

from __future__ import annotations

from datetime import datetime

from reviews import messages, notify
from reviews.context import Actor, Services
from reviews.model import State, format_reference
from storage.database import UnitOfWork
from storage.tables import Outbox, Review


def callback_key(review_id: int) -> str:
    """The outbox key of the private message giving whoever took a request its call-back
    number."""
    return f"callback:{review_id}"


def callback_again_key(review_id: int, platform: str, user_id: str) -> str:
    """The outbox key of the call-back number sent again, to `user_id`, after it failed."""
    return f"{CALLBACK_AGAIN}{review_id}:{platform}:{user_id}"


CALLBACK_AGAIN = "callback-again:"


def is_callback(review_id: int, key: str) -> bool:
    """Whether `key` is a private message giving request `review_id`'s call-back number."""
    return key == callback_key(review_id) or key.startswith(f"{CALLBACK_AGAIN}{review_id}:")


def send_again(uow: UnitOfWork, review: Review, by: Actor, now: datetime) -> None:
    """Whoever moves a taken request on (Attending, Record outcome) is sent its call-back
    number privately, once, while every message giving it to someone has failed for good:
    otherwise nobody on the team had the number the family waits to be called back on. Once
    one has gone (or still waits to), nobody else is sent it."""
    if not review.callback_number:
        return
    review_id = review.id or 0
    states = [
        row.state for row in uow.outbox.for_review(review_id) if is_callback(review_id, row.key)
    ]
    if not states or any(state != "failed" for state in states):
        return
    send(uow, review, by, callback_again_key(review_id, by.platform, by.user_id), now)


def send(uow: UnitOfWork, review: Review, by: Actor, key: str, now: datetime) -> None:
    notify.to_user(
        uow,
        platform=by.platform,
        user_id=by.user_id,
        key=key,
        at=now,
        review_id=review.id,
        message=messages.Message(text=messages.callback_line(review)),
    )


def not_delivered(uow: UnitOfWork, services: Services, row: Outbox) -> None:
    """`row`, a private message with a request's call-back number, failed for good: the
    outreach channel's thread says so, each time one does, and how whoever calls the family
    back gets it instead (sent again to the same unreachable person at Attending, its failing
    again had been said nowhere but the digest channel, and the thread read as if they had
    it now)."""
    review_id = row.review_id or 0
    review = uow.reviews.get(review_id)
    if review is None:
        return
    reference = format_reference(review_id)
    if row.key == callback_key(review_id):
        to, key = review.acknowledged_by or "whoever took it", f"callback-lost:{review_id}"
    else:
        person = uow.rota.staff_by_platform_id(row.platform, row.address)
        took = (row.platform, row.address) == (
            review.acknowledged_platform,
            review.acknowledged_user,
        )
        named = person.name if person else (review.acknowledged_by if took else None)
        to, key = named or "whoever pressed it", f"callback-lost:{row.key}"
    line = f"{reference}: the call-back number could not be sent privately to {to}."
    if State(review.state) in (State.ACKNOWLEDGED, State.RAISED):
        line += " Whoever presses Attending on this card is sent it privately."
    elif State(review.state) is State.ATTENDING:
        line += " Whoever records its outcome is sent it privately."
    else:
        line += " A manager can find it in the month's export with identifiers."
    notify.to_outreach(
        uow,
        services.routes,
        key=key,
        kind="thread",
        message=messages.Message(text=line),
        at=services.clock.now(),
        review_id=review_id,
    )
