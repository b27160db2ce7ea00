"""Attend reminders: acknowledged, but nobody has pressed Attending within the urgency's
`attend_within`. The sweep (reviews.escalation) claims such reviews and calls this."""

from __future__ import annotations

from datetime import datetime

from reviews import messages, notify
from reviews.clock import next_slot
from reviews.context import Services
from reviews.model import format_reference
from reviews.policy import Ladder
from rotas.lookup import who_holds
from storage.database import UnitOfWork
from storage.tables import Review


def remind_to_attend(uow: UnitOfWork, services: Services, review: Review, now: datetime) -> None:
    """Acknowledged but nobody attending in time: remind the acknowledger and the next level.

    Once per attend_within interval (counted from the acknowledgement) until someone attends.
    """
    ladder = Ladder.from_json(review.policy)
    count = review.attend_reminders
    within = messages.minutes(ladder.attend_within.total_seconds())
    text = (
        f"Reminder: {format_reference(review.id or 0)} ({review.urgency}) was acknowledged by "
        f"{review.acknowledged_by} but nobody has pressed Attending within {within}."
    )
    message = messages.Message(
        text=text, review=messages.review_view(review, services.timezone), actions=("attend",)
    )
    key = f"attend:{review.id}:{count}"
    platform, user = review.acknowledged_platform or "", review.acknowledged_user or ""
    acknowledger = uow.rota.staff_by_platform_id(platform, user)
    if acknowledger is not None:
        notify.to_person(
            uow,
            services.routes,
            acknowledger,
            key=f"{key}:ack",
            message=message,
            at=now,
            review_id=review.id,
        )
    elif platform and user:
        notify.to_user(
            uow,
            platform=platform,
            user_id=user,
            key=f"{key}:ack",
            message=message,
            at=now,
            review_id=review.id,
        )
    index = min(review.escalation_level, len(ladder.levels) - 1)
    next_level, _, _ = notify.tell_holders(
        uow,
        services.routes,
        ladder.levels[index].notify,
        lambda role: who_holds(uow, role, now),
        key=key,
        message=message,
        now=now,
        review_id=review.id,
        skip={acknowledger.id} if acknowledger is not None else set(),
    )
    reminded = [review.acknowledged_by or user, *next_level]
    uow.events.record(
        review_id=review.id,
        kind="attend_reminder",
        at=now,
        count=count + 1,
        level=index,
        reminded=reminded,
    )
    review.attend_reminders = count + 1
    review.next_attend_reminder_at = next_slot(
        review.next_attend_reminder_at or now, ladder.attend_within, now
    )
    uow.session.add(review)
