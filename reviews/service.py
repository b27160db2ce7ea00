"""What people do to a review. Each function is one transaction: state, audit, outbox, commit.

Errors a person can cause raise ServiceError subclasses whose message they can act on.
DatabaseUnavailable (storage) means nothing was recorded: the caller must say so and give
FALLBACK_CONTACT.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from reviews import callback, messages, notify
from reviews.context import Actor, Services, known_as
from reviews.errors import BadInput as BadInput
from reviews.errors import NotAllowed as NotAllowed
from reviews.errors import NotFound as NotFound
from reviews.errors import ServiceError as ServiceError
from reviews.errors import WrongState as WrongState
from reviews.escalation import fire_due_levels
from reviews.model import (
    WEB_PLATFORM,
    Action,
    FormErrors,
    Outcome,
    Source,
    State,
    ValidRequest,
    format_reference,
    validate_outcome,
    validate_reason,
)
from reviews.permissions import check_review_action
from reviews.policy import Ladder
from storage.database import UnitOfWork
from storage.tables import Review

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    review: Review
    changed: bool  # False when the same thing was already done (a double click, a retry)
    note: str

    @property
    def reference(self) -> str:
        return format_reference(self.review.id or 0)

    @property
    def review_id(self) -> int:
        assert self.review.id is not None  # a stored review has its id
        return self.review.id


def raise_review(
    *, services: Services, request: ValidRequest, by: Actor, submission_key: str | None = None
) -> Result:
    """Record a new review with its first messages; a repeated submission_key returns the first."""
    try:
        return _raise(services, request, by, submission_key)
    except IntegrityError:
        # Two copies of one submission raced; the other one won and holds the review.
        if submission_key is None:
            raise
        with services.db.unit_of_work() as uow:
            existing = uow.reviews.by_submission_key(submission_key)
        if existing is None:
            raise
        return Result(existing, False, f"{format_reference(existing.id or 0)} was already raised.")


def _raise(
    services: Services, request: ValidRequest, by: Actor, submission_key: str | None
) -> Result:
    now = services.clock.now()
    with services.db.unit_of_work() as uow:
        if submission_key and (existing := uow.reviews.by_submission_key(submission_key)):
            return Result(
                existing, False, f"{format_reference(existing.id or 0)} was already raised."
            )
        by = known_as(uow, by)
        review = add_review(uow, services, request, by, now=now, submission_key=submission_key)
    log.info("%s raised (%s, %s)", format_reference(review.id or 0), review.urgency, by.platform)
    return Result(review, True, f"{format_reference(review.id or 0)} raised.")


def add_review(
    uow: UnitOfWork,
    services: Services,
    request: ValidRequest,
    by: Actor,
    *,
    now: datetime,
    submission_key: str | None = None,
) -> Review:
    """Write a new review, its audit event, its card and its first level inside the caller's
    transaction (a check-in asking for a review raises it in the check-in's own)."""
    ladder = services.policy.ladder_for(request.news2, patient_or_family=request.patient_or_family)
    review = uow.reviews.add(
        Review(
            submission_key=submission_key,
            state=State.RAISED,
            caller=request.caller,
            concern_kind=request.concern_kind,
            ward=request.ward,
            bed=request.bed,
            nhs_number=request.nhs_number,
            news2=request.news2,
            concern=request.concern,
            callback_number=request.callback_number,
            source=request.source,
            caller_name=request.caller_name,
            patient_name=request.patient_name,
            relationship=request.relationship,
            spoken_to_ward=request.spoken_to_ward,
            # The private status link for whoever raised it outside the chat platforms.
            status_token=None if request.source is Source.FORM else secrets.token_urlsafe(24),
            urgency=ladder.urgency,
            policy=ladder.to_json(),
            raised_platform=by.platform,
            raised_by=by.user_id,
            raised_by_name=by.label,
            raised_at=now,
            next_escalation_at=now + ladder.levels[0].after,
        )
    )
    uow.events.record(
        review_id=review.id,
        kind="raised",
        at=now,
        **by.audited,
        caller=request.caller,
        source=request.source,
        urgency=ladder.urgency,
    )
    notify.to_outreach(
        uow,
        services.routes,
        key=f"card:{review.id}",
        kind="card",
        message=messages.card(review, services.timezone),
        at=now,
        review_id=review.id,
    )
    fire_due_levels(uow, services, review, now)
    return review


def open_requests(*, services: Services, limit: int = messages.OPEN_LISTED) -> messages.OpenList:
    """Requests not yet closed: how many, and the oldest `limit` of them as lines."""
    with services.db.unit_of_work() as uow:
        total = uow.reviews.count_open()
        oldest = uow.reviews.open_reviews(limit=limit)
    return messages.OpenList.of(total, oldest, services.timezone)


def acknowledge(*, services: Services, review_id: int, by: Actor) -> Result:
    def apply(uow: UnitOfWork, review: Review, by: Actor) -> None:
        now = services.clock.now()
        _take(uow, review, by, now)
        review.next_attend_reminder_at = now + Ladder.from_json(review.policy).attend_within

    return _change(services, review_id, by, Action.ACKNOWLEDGE, State.ACKNOWLEDGED, apply)


def attend(*, services: Services, review_id: int, by: Actor) -> Result:
    def apply(uow: UnitOfWork, review: Review, by: Actor) -> None:
        now = services.clock.now()
        _take(uow, review, by, now)
        review.attending_at, review.attending_by = now, by.label
        review.next_attend_reminder_at = None

    return _change(services, review_id, by, Action.ATTEND, State.ATTENDING, apply)


def record_outcome(
    *, services: Services, review_id: int, by: Actor, outcome: Outcome, detail: str = ""
) -> Result:
    """Close a review. A transfer's detail names where to (ICU, HDU, CCU or theatre); any
    other outcome's is an optional note. BadInput when either is not acceptable."""
    try:
        outcome, detail = validate_outcome(
            outcome.value, *((detail, "") if outcome is Outcome.TRANSFER else ("", detail))
        )
    except FormErrors as problems:
        raise BadInput(problems) from None

    def apply(uow: UnitOfWork, review: Review, by: Actor) -> None:
        now = services.clock.now()
        _take(uow, review, by, now)
        review.closed_at, review.closed_by = now, by.label
        review.closed_platform, review.closed_user = by.platform, by.user_id
        review.outcome, review.outcome_detail = outcome, detail or None
        review.next_attend_reminder_at = None

    return _change(
        services,
        review_id,
        by,
        Action.RECORD_OUTCOME,
        State.CLOSED,
        apply,
        outcome=outcome.value,
        detail=detail,
    )


def cancel(*, services: Services, review_id: int, by: Actor, reason: str) -> Result:
    """Withdraw a review raised in error or no longer needed; the raiser or a responder."""
    try:
        reason = validate_reason(reason)
    except FormErrors as problems:
        raise BadInput(problems) from None

    def apply(uow: UnitOfWork, review: Review, by: Actor) -> None:
        now = services.clock.now()
        review.cancelled_at, review.cancelled_by, review.cancel_reason = now, by.label, reason
        review.cancelled_platform, review.cancelled_user = by.platform, by.user_id
        review.next_escalation_at = review.next_attend_reminder_at = None

    return _change(services, review_id, by, Action.CANCEL, State.CANCELLED, apply, reason=reason)


def _take(uow: UnitOfWork, review: Review, by: Actor, now: datetime) -> None:
    """The first of Acknowledge, Attending or Record outcome takes the request: the ladder
    stops, and whoever took it is sent the call-back number privately (never on the card)."""
    review.next_escalation_at = None
    if review.acknowledged_at is not None:
        callback.send_again(uow, review, by, now)
        return
    review.acknowledged_at, review.acknowledged_by = now, by.label
    review.acknowledged_platform, review.acknowledged_user = by.platform, by.user_id
    if review.callback_number:
        callback.send(uow, review, by, callback.callback_key(review.id or 0), now)


ALLOWED_FROM = {
    State.ACKNOWLEDGED: (State.RAISED,),
    State.ATTENDING: (State.RAISED, State.ACKNOWLEDGED),
    State.CLOSED: (State.RAISED, State.ACKNOWLEDGED, State.ATTENDING),
    State.CANCELLED: (State.RAISED, State.ACKNOWLEDGED, State.ATTENDING),
}


def _change(
    services: Services,
    review_id: int,
    by: Actor,
    action: Action,
    target: State,
    apply: Callable[[UnitOfWork, Review, Actor], None],
    **detail: str,
) -> Result:
    reference = format_reference(review_id)
    with services.db.unit_of_work() as uow:
        review = uow.reviews.get(review_id, for_update=True)
        if review is None:
            raise NotFound(f"There is no request {reference}.")
        by = known_as(uow, by)
        check_review_action(uow, review, by, action, services.clock.now())
        state = State(review.state)
        if state is target:
            return Result(
                review,
                False,
                f"{reference} is already {target.value}: "
                f"{messages.state_line(review, services.timezone)}.",
            )
        if state not in ALLOWED_FROM[target]:
            raise WrongState(f"{reference} is {state.value}, so it cannot be {target.value} now.")
        apply(uow, review, by)
        review.state = target
        uow.session.add(review)
        now = services.clock.now()
        uow.outbox.drop_pending_escalations(review_id)
        uow.events.record(
            review_id=review_id,
            kind=target.value,
            at=now,
            **by.audited,
            **detail,
        )
        _announce(uow, services, review)
    log.info("%s %s via %s", reference, target.value, by.platform)
    return Result(review, True, f"{reference} {target.value}.")


def check_may(*, services: Services, review_id: int, by: Actor, action: Action) -> str:
    """Before asking for more (an outcome, a reason): the reference, if `by` may still do
    `action` to the review. NotFound, WrongState or NotAllowed otherwise."""
    reference = format_reference(review_id)
    with services.db.unit_of_work() as uow:
        review = uow.reviews.get(review_id)
        if review is None:
            raise NotFound(f"There is no request {reference}.")
        if not State(review.state).is_open:
            raise WrongState(f"{reference} is already {review.state}.")
        check_review_action(uow, review, by, action, services.clock.now())
    return reference


def _announce(uow: UnitOfWork, services: Services, review: Review) -> None:
    """Update the card in place, add a thread line, and tell the raiser."""
    line = messages.state_line(review, services.timezone)
    key = f"{review.id}:{review.state}"
    card = messages.card(review, services.timezone)
    at = services.clock.now()
    notify.to_outreach(
        uow,
        services.routes,
        key=f"upd:{key}",
        kind="card_update",
        message=card,
        at=at,
        review_id=review.id,
    )
    notify.to_outreach(
        uow,
        services.routes,
        key=f"thread:{key}",
        kind="thread",
        message=messages.Message(text=line),
        at=at,
        review_id=review.id,
    )
    if review.raised_platform == WEB_PLATFORM:
        return  # no chat to tell them in: the status page shows the change
    notify.to_user(
        uow,
        platform=review.raised_platform,
        user_id=review.raised_by,
        key=f"raiser:{key}",
        at=at,
        review_id=review.id,
        message=messages.Message(text=f"Your request {format_reference(review.id or 0)}: {line}."),
    )
