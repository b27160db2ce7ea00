"""The escalation ladder: sweep() claims due reviews and fires their levels.

Every replica runs sweep() every half second. A review is claimed under a row lock (PostgreSQL
SKIP LOCKED; SQLite's write lock), its due levels fire into the outbox under keys
(review, level, repeat, recipient), and its next deadline is set, all in one transaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial

from reviews import fallback, messages, notify
from reviews.clock import next_slot
from reviews.context import Services
from reviews.isolation import isolated
from reviews.model import State, format_reference
from reviews.policy import Ladder, Level
from reviews.reminders import remind_to_attend
from rotas.lookup import who_holds
from storage.database import UnitOfWork
from storage.tables import Outbox, Review, Staff

log = logging.getLogger(__name__)


def sweep(services: Services, *, batch: int = 100) -> int:
    """Fire every due level and attend reminder; the number of reviews that moved.

    Works in batches of `batch` reviews, one transaction each, so a burst (a restart after
    downtime) neither holds locks for long nor waits for the next tick. DatabaseUnavailable
    if the database cannot be reached; whatever was committed before that stands.
    """
    now = services.clock.now()
    moved = 0
    while True:
        with services.db.unit_of_work() as uow:
            due = uow.reviews.claim_due_escalations(now, batch)
            on_call = OnCall(uow, now)  # one rota lookup per role for the whole batch
            fired = [
                isolated(
                    uow,
                    services,
                    review.id,
                    partial(fire_due_levels, uow, services, review, now, on_call=on_call),
                    doing="escalated",
                )
                for review in due
            ]
        moved += sum(fired)
        if len(due) < batch or not all(fired):  # a broken review is retried next tick
            break
    while True:
        with services.db.unit_of_work() as uow:
            late = uow.reviews.claim_due_attend_reminders(now, batch)
            reminded = [
                isolated(
                    uow,
                    services,
                    review.id,
                    partial(remind_to_attend, uow, services, review, now),
                    doing="escalated",
                )
                for review in late
            ]
        moved += sum(reminded)
        if len(late) < batch or not all(reminded):
            break
    fallback.follow_up(services, batch=batch)
    return moved


class OnCall:
    """who_holds(role, now), asked once per role: a batch of reviews shares one rota."""

    def __init__(self, uow: UnitOfWork, now: datetime):
        self.uow, self.now = uow, now
        self.holders: dict[str, list[Staff]] = {}

    def __call__(self, role: str) -> list[Staff]:
        if role not in self.holders:
            self.holders[role] = who_holds(self.uow, role, self.now)
        return self.holders[role]


def fire_due_levels(
    uow: UnitOfWork,
    services: Services,
    review: Review,
    now: datetime,
    *,
    on_call: OnCall | None = None,
) -> None:
    """Fire, in order, each level of `review` that is due at `now`."""
    ladder = Ladder.from_json(review.policy)
    on_call = on_call or OnCall(uow, now)
    while (
        review.state == State.RAISED
        and review.next_escalation_at is not None
        and review.next_escalation_at <= now
    ):
        index, repeat = review.escalation_level, review.escalation_repeat
        due, level = review.next_escalation_at, ladder.levels[index]
        has_next = index + 1 < len(ladder.levels)
        # The last level with nobody to tell calls everyone on the levels before it instead: it
        # has no next level to skip to, and its repeats reached no person at all.
        earlier = () if has_next else _roles_before(ladder, index)
        someone_told = _fire(
            uow, services, on_call, review, index, repeat, level, now, has_next, earlier
        )
        fallback.level_fired(uow, services, review, ladder, index, repeat, on_call, now)
        if has_next:
            review.escalation_level = index + 1
            scheduled = review.raised_at + ladder.levels[index + 1].after
            # Nobody on call: the next level fires at once rather than waiting out its delay.
            review.next_escalation_at = scheduled if someone_told else min(scheduled, now)
        elif level.repeat_every is not None:
            review.escalation_repeat = repeat + 1
            # Counted from when this one was due, so a late sweep does not push repeats later;
            # after downtime, one catch-up repeat, not one per missed interval.
            review.next_escalation_at = next_slot(due, level.repeat_every, now)
        else:
            review.next_escalation_at = None
    uow.session.add(review)


def _fire(
    uow: UnitOfWork,
    services: Services,
    on_call: OnCall,
    review: Review,
    index: int,
    repeat: int,
    level: Level,
    now: datetime,
    has_next: bool,
    earlier: tuple[str, ...] = (),
) -> bool:
    """Queue one level's messages and its audit event; False when nobody could be told. If
    nobody at the level could be told, `earlier`'s holders are told instead, and the outreach
    channel too."""
    assert review.id is not None
    key = f"esc:{review.id}:{index}:{repeat}"
    text = _level_text(review, index, repeat, now)
    message = messages.with_acknowledge(review, services.timezone, text)
    told, unreachable, gaps = notify.tell_holders(
        uow,
        services.routes,
        level.notify,
        on_call,
        key=key,
        message=message,
        now=now,
        review_id=review.id,
    )
    called_back = bool(earlier) and not told
    if called_back:
        nobody = ", ".join(level.notify)
        message = messages.with_acknowledge(
            review,
            services.timezone,
            f"{text} Nobody holding {nobody} could be told, so everyone on the earlier levels "
            "is called again.",
        )
        # Under the level's own key (nobody at the level was told, so no person's key is
        # taken): the texts that follow an unanswered direct message read the person from it.
        told, more_unreachable, _ = notify.tell_holders(
            uow,
            services.routes,
            earlier,
            on_call,
            key=key,
            message=message,
            now=now,
            review_id=review.id,
        )
        unreachable |= more_unreachable
    if level.channel or (not has_next and not told) or called_back:
        notify.to_outreach(
            uow,
            services.routes,
            key=f"{key}:channel",
            kind="channel",
            message=message,
            at=now,
            review_id=review.id,
        )
    problems = {role: f"nobody holds {role}" for role in gaps} | unreachable
    for part, problem in problems.items():
        report_gap(
            uow,
            services,
            review,
            index,
            repeat,
            problem,
            now,
            part=part,
            skipped=has_next and not told,
        )
    uow.events.record(
        review_id=review.id,
        kind="escalated",
        at=now,
        level=index,
        repeat=repeat,
        roles=list(level.notify),
        notified=told,
        nobody_on_call=gaps,
        unreachable=list(unreachable.values()),
        channel=level.channel,
        earlier_called=list(earlier) if called_back else [],
    )
    # Logged once committed: a tick the database refuses would otherwise say so every time.
    uow.on_commit.append(
        partial(
            log.info,
            "%s escalation level %s repeat %s: %s told",
            format_reference(review.id),
            index,
            repeat,
            len(told),
        )
    )
    return bool(told)


def _said(uow: UnitOfWork, review_id: int, index: int, repeat: int) -> bool:
    """Whether nobody reached at level `index` (repeat `repeat`) was recorded already."""
    return any(
        detail["level"] == index and detail["repeat"] == repeat
        for detail in (
            json.loads(event.detail)
            for event in uow.events.for_review(review_id)
            if event.kind == "level_unreachable"
        )
    )


def _roles_before(ladder: Ladder, index: int) -> tuple[str, ...]:
    """Every role on the levels before `index`, each once, in the order they are called."""
    return tuple(dict.fromkeys(role for level in ladder.levels[:index] for role in level.notify))


def _level_text(review: Review, index: int, repeat: int, now: datetime) -> str:
    reference = format_reference(review.id or 0)
    if index == 0 and repeat == 0:
        return f"New rapid review {reference} ({review.urgency}): please acknowledge."
    waited = messages.minutes((now - review.raised_at).total_seconds())
    again = f", repeat {repeat}" if repeat else ""
    return (
        f"Escalation level {index}{again}: {reference} ({review.urgency}) has waited "
        f"{waited} without acknowledgement."
    )


def report_gap(
    uow: UnitOfWork,
    services: Services,
    review: Review,
    index: int,
    repeat: int,
    problem: str,
    now: datetime,
    *,
    part: str = "",
    skipped: bool = False,
) -> None:
    """Tell the digest channel (and the audit trail) that part of a level could not be told.

    `skipped` says nobody at the level was told, so the ladder moved on at once.
    """
    reference = format_reference(review.id or 0)
    uow.events.record(
        review_id=review.id,
        kind="cover_gap",
        at=now,
        level=index,
        repeat=repeat,
        problem=problem,
        skipped=skipped,
    )
    moved_on = " Nobody at that level could be told, so the next level was called at once."
    log.warning(
        "%s: cover gap at escalation level %s: %s%s",
        reference,
        index,
        problem,
        " (the next level was called at once)" if skipped else "",
    )
    notify.to_digest_channel(
        uow,
        services.routes,
        key=f"gap:{review.id}:{index}:{repeat}:{part or problem[:100]}",
        message=messages.Message(
            text=f"Cover gap: {problem} at escalation level {index} of {reference}."
            + (moved_on if skipped else "")
        ),
        at=now,
        review_id=review.id,
    )


def nobody_reached(
    uow: UnitOfWork,
    services: Services,
    review_id: int,
    index: int,
    repeat: int,
    now: datetime,
    *,
    held_up: Callable[[Outbox], bool],
) -> None:
    """Every direct message of level `index` (repeat `repeat`) has failed for good, or is
    `held_up` (its platform down: still tried, or waiting behind one that is): a level that
    reached nobody is not waited for, as one with nobody on call is not. The next level is
    called at once, with an audit event and a report to the digest channel, once per level and
    repeat."""
    prefix = f"esc:{review_id}:{index}:{repeat}:"
    directs = [
        row
        for row in uow.outbox.for_review(review_id)
        if row.kind == "direct" and row.key.startswith(prefix)
    ]
    if not directs or _said(uow, review_id, index, repeat):
        return  # nothing sent at that level, or said already (held up, then failed for good)
    unsent = [row for row in directs if row.state != "failed"]
    if not all(held_up(row) for row in unsent):
        return  # someone was reached, or may still be
    review = uow.reviews.get(review_id, for_update=True)
    # Read again under the review's lock: another replica may have said it meanwhile.
    if review is None or review.state != State.RAISED or _said(uow, review_id, index, repeat):
        return
    waiting = (
        review.escalation_level == index + 1
        and review.escalation_repeat == 0
        and review.next_escalation_at is not None
        and review.next_escalation_at > now
    )
    if waiting:
        review.next_escalation_at = now  # the sweep calls the next level on its next tick
        uow.session.add(review)
    reference = format_reference(review_id)
    uow.events.record(
        review_id=review_id,
        kind="level_unreachable",
        at=now,
        level=index,
        repeat=repeat,
        moved_on=waiting,
    )
    log.warning("%s: nobody at escalation level %s could be reached", reference, index)
    then = " The next level is being called now." if waiting else ""
    why = (
        "could be reached: no direct message has gone (each failed, or is held up and still "
        "being tried)"
        if unsent
        else "could be reached: every direct message failed"
    )
    notify.to_digest_channel(
        uow,
        services.routes,
        key=f"unreached:{review_id}:{index}:{repeat}",
        message=messages.Message(
            text=f"Nobody at escalation level {index} of {reference} {why}.{then}"
        ),
        at=now,
        review_id=review_id,
    )
