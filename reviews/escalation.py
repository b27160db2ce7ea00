"""The escalation ladder: sweep() claims due reviews and fires their levels.

Every replica runs sweep() every second. A review is claimed under a row lock (PostgreSQL
SKIP LOCKED; SQLite's write lock), its due levels fire into the outbox under keys
(review, level, repeat, recipient), and its next deadline is set, all in one transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime

from reviews import messages, notify
from reviews.context import Services
from reviews.model import State, format_reference
from reviews.policy import Ladder, Level
from rotas.lookup import who_holds
from storage.database import UnitOfWork
from storage.tables import Review

log = logging.getLogger(__name__)


def sweep(services: Services, *, limit: int = 200) -> int:
    """Fire every due level and attend reminder; the number of reviews that moved."""
    now = services.clock.now()
    with services.db.unit_of_work() as uow:
        due = uow.reviews.claim_due_escalations(now, limit)
        for review in due:
            fire_due_levels(uow, services, review, now)
        late = uow.reviews.claim_due_attend_reminders(now, limit)
        for review in late:
            remind_to_attend(uow, services, review, now)
    return len(due) + len(late)


def fire_due_levels(uow: UnitOfWork, services: Services, review: Review, now: datetime) -> None:
    """Fire, in order, each level of `review` that is due at `now`."""
    ladder = Ladder.from_json(review.policy)
    while (
        review.state == State.RAISED
        and review.next_escalation_at is not None
        and review.next_escalation_at <= now
    ):
        index, repeat = review.escalation_level, review.escalation_repeat
        level = ladder.levels[index]
        someone_told = _fire(uow, services, review, index, repeat, level, now)
        if index + 1 < len(ladder.levels):
            review.escalation_level = index + 1
            scheduled = review.raised_at + ladder.levels[index + 1].after
            # Nobody on call: the next level fires at once rather than waiting out its delay.
            review.next_escalation_at = scheduled if someone_told else min(scheduled, now)
        elif level.repeat_every is not None:
            review.escalation_repeat = repeat + 1
            scheduled = review.raised_at + level.after + level.repeat_every * (repeat + 1)
            # After downtime, one catch-up repeat, not one per missed interval.
            review.next_escalation_at = max(scheduled, now + level.repeat_every)
        else:
            review.next_escalation_at = None
    uow.session.add(review)


def _fire(
    uow: UnitOfWork,
    services: Services,
    review: Review,
    index: int,
    repeat: int,
    level: Level,
    now: datetime,
) -> bool:
    assert review.id is not None
    reference = format_reference(review.id)
    waited = messages.minutes((now - review.raised_at).total_seconds())
    if index == 0 and repeat == 0:
        text = f"New rapid review {reference}: you hold the bleep. Please acknowledge."
    else:
        again = f", repeat {repeat}" if repeat else ""
        text = (
            f"Escalation level {index}{again}: {reference} has waited {waited} "
            "without acknowledgement."
        )
    message = messages.with_acknowledge(review, services.timezone, text)
    told: list[str] = []
    unreachable: list[str] = []
    gaps: list[str] = []
    seen: set[int] = set()
    for role in level.notify:
        holders = who_holds(uow, role, now)
        if not holders:
            gaps.append(role)
        for person in holders:
            if person.id in seen:
                continue
            seen.add(person.id or 0)
            platforms = notify.to_person(
                uow,
                services.routes,
                person,
                key=f"esc:{review.id}:{index}:{repeat}:{person.id}",
                message=message,
                at=now,
                review_id=review.id,
            )
            (told if platforms else unreachable).append(person.name)
    if level.channel:
        notify.to_outreach(
            uow,
            services.routes,
            key=f"esc:{review.id}:{index}:{repeat}:channel",
            kind="channel",
            message=message,
            at=now,
            review_id=review.id,
        )
    for role in gaps:
        report_gap(uow, services, review, index, repeat, f"nobody holds {role}", now)
    for name in unreachable:
        report_gap(uow, services, review, index, repeat, f"{name} cannot be messaged", now)
    uow.events.record(
        review_id=review.id,
        kind="escalated",
        at=now,
        level=index,
        repeat=repeat,
        roles=list(level.notify),
        notified=told,
        nobody_on_call=gaps,
        unreachable=unreachable,
        channel=level.channel,
    )
    log.info("%s escalation level %s repeat %s: %s told", reference, index, repeat, len(told))
    return bool(told)


def report_gap(
    uow: UnitOfWork,
    services: Services,
    review: Review,
    index: int,
    repeat: int,
    problem: str,
    now: datetime,
) -> None:
    reference = format_reference(review.id or 0)
    uow.events.record(review_id=review.id, kind="cover_gap", at=now, level=index, problem=problem)
    notify.to_digest_channel(
        uow,
        services.routes,
        key=f"gap:{review.id}:{index}:{repeat}:{problem}",
        message=messages.Message(
            text=f"Cover gap: {problem} at escalation level {index} of {reference}; "
            "the next level was called at once."
        ),
        at=now,
        review_id=review.id,
    )


def remind_to_attend(uow: UnitOfWork, services: Services, review: Review, now: datetime) -> None:
    """Acknowledged but nobody attending in time: remind the acknowledger and the next level."""
    ladder = Ladder.from_json(review.policy)
    count = review.attend_reminders
    reference = format_reference(review.id or 0)
    text = (
        f"Reminder: {reference} ({review.urgency}) was acknowledged by {review.acknowledged_by} "
        f"but nobody has pressed Attending within {messages.minutes(ladder.attend_within.total_seconds())}."
    )
    message = messages.Message(text=text, review=messages.review_view(review, services.timezone),
                               actions=("attend",))
    key = f"attend:{review.id}:{count}"
    acknowledger = uow.rota.staff_by_platform_id(
        review.acknowledged_platform or "", review.acknowledged_user or ""
    )
    if acknowledger is not None:
        notify.to_person(uow, services.routes, acknowledger, key=f"{key}:ack", message=message,
                         at=now, review_id=review.id)
    elif review.acknowledged_platform and review.acknowledged_user:
        notify.to_user(uow, platform=review.acknowledged_platform, user_id=review.acknowledged_user,
                       key=f"{key}:ack", message=message, at=now, review_id=review.id)
    level = ladder.levels[min(review.escalation_level, len(ladder.levels) - 1)]
    reminded = []
    for role in level.notify:
        for person in who_holds(uow, role, now):
            if acknowledger is not None and person.id == acknowledger.id:
                continue
            if notify.to_person(uow, services.routes, person, key=f"{key}:{person.id}",
                                message=message, at=now, review_id=review.id):
                reminded.append(person.name)
    uow.events.record(review_id=review.id, kind="attend_reminder", at=now, count=count + 1,
                      reminded=reminded)
    review.attend_reminders = count + 1
    base = review.acknowledged_at or now
    review.next_attend_reminder_at = max(
        base + ladder.attend_within * (count + 2), now + ladder.attend_within
    )
    uow.session.add(review)
