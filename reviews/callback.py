"""The family's call-back number: sent privately to whoever takes a request, never shown on
the card; sent again to whoever moves the request on when every private message giving it failed
for good, and the outreach channel's thread told (without the number) each time one fails."""

from __future__ import annotations

from datetime import datetime

from reviews import messages, notify
from reviews.context import Actor, Services
from reviews.model import State, format_reference
from reviews.notify import person_address
from reviews.policy import Ladder
from rotas.lookup import who_holds
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
    back gets it instead. Whoever has moved the request on since (attending it, recording its
    outcome) and was not sent it is sent it now; once it is closed, so is whoever holds the
    first level's role now (the bleep-holder), as nobody else will press anything."""
    review_id = row.review_id or 0
    # Locked: a press of Attending at this moment has read this message as still on its way
    # (so sent the number to nobody) and is seen here having moved the request on, or it waits
    # for this to commit and reads the message failed.
    review = uow.reviews.get(review_id, for_update=True)
    if review is None:
        return
    reference = format_reference(review_id)
    first = row.key == callback_key(review_id)
    to = _name(uow, review, row) or ("whoever took it" if first else "whoever pressed it")
    key = f"callback-lost:{review_id}" if first else f"callback-lost:{row.key}"
    line = f"{reference}: the call-back number could not be sent privately to {to}."
    instead = _send_instead(uow, services, review)
    # Sent, or still being tried, to someone else (the other of two bleep-holders): they have
    # it, and nobody pressing anything is sent it now (send_again), so the thread says who.
    holding = [
        _name(uow, review, other) or "someone on the team"
        for other in uow.outbox.for_review(review_id)
        if is_callback(review_id, other.key)
        and other.id != row.id
        and other.state not in ("failed", "dropped")
    ]
    if instead:
        line += f" It is sent privately to {' and '.join(instead)} instead."
    elif holding:
        line += f" It is sent privately to {' and '.join(dict.fromkeys(holding))}."
    elif State(review.state) in (State.ACKNOWLEDGED, State.RAISED):
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


def _name(uow: UnitOfWork, review: Review, row: Outbox) -> str | None:
    """Who a call-back message was for, by name, if known."""
    person = uow.rota.staff_by_platform_id(row.platform, row.address)
    if person:
        return person.name
    took = (row.platform, row.address) == (review.acknowledged_platform, review.acknowledged_user)
    return review.acknowledged_by if took else None


def _send_instead(uow: UnitOfWork, services: Services, review: Review) -> list[str]:
    """Send the number to the first of these never sent it: whoever attended the request (its
    state now), whoever recorded its outcome, then whoever holds the bleep now. Their names;
    none while the request waits for Attending, or once everyone was tried."""
    review_id = review.id or 0
    tried = {
        (row.platform, row.address)
        for row in uow.outbox.for_review(review_id)
        if is_callback(review_id, row.key)
    }
    now = services.clock.now()
    for people in _who_could_call_back(uow, services, review):
        untried = [p for p in people if (p.platform, p.user_id) not in tried]
        for person in untried:
            key = callback_again_key(review_id, person.platform, person.user_id)
            send(uow, review, person, key, now)
        if untried:
            return list(dict.fromkeys(person.label for person in untried))
    return []


def _who_could_call_back(uow: UnitOfWork, services: Services, review: Review) -> list[list[Actor]]:
    """For a request past Acknowledge: whoever moved it on last, then the bleep-holders."""
    state = State(review.state)
    if state is State.ATTENDING:
        attended = [e for e in uow.events.for_review(review.id or 0) if e.kind == "attending"]
        return [[_actor(e.platform, e.actor_id, e.actor) for e in attended[-1:] if e.actor_id]]
    if state not in (State.CLOSED, State.CANCELLED):
        return []
    closer = []
    if state is State.CLOSED and review.closed_platform and review.closed_user:
        closer = [_actor(review.closed_platform, review.closed_user, review.closed_by)]
    holders = [
        _actor(route.platform, address, person.name)
        for role in Ladder.from_json(review.policy).levels[0].notify
        for person in who_holds(uow, role, services.clock.now())
        for route in services.routes
        if (address := person_address(route, person))
    ]
    return [closer, holders]


def _actor(platform: str, user_id: str, name: str | None) -> Actor:
    return Actor(platform=platform, user_id=user_id, name=name or "")
