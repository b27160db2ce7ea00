"""Daily check-ins, the core's second aggregate: recording one, and reading a ward's day.

A check-in whose patient or family would like a rapid review now raises it in the check-in's
own transaction, so either both are stored or neither is. DatabaseUnavailable means nothing was
recorded: the caller must say so and give FALLBACK_CONTACT.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.exc import IntegrityError

from reviews import public
from reviews.checkin_model import WORSE_ADVICE, Answer, Respondent, ValidCheckin, who_answered
from reviews.checkin_prompt import ward_address
from reviews.context import Actor, Services
from reviews.messages import Message, local_time
from reviews.model import Caller, ConcernKind, Source, State, ValidRequest, format_reference
from reviews.service import add_review
from storage.database import UnitOfWork
from storage.tables import Checkin, Outbox, Review

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckinResult:
    checkin: Checkin
    review: Review | None  # the rapid review it raised, if they asked for one
    changed: bool  # False when this submission was already recorded (a retry)
    note: str  # what to tell the person who recorded it

    @property
    def reference(self) -> str | None:
        return format_reference(self.review.id or 0) if self.review else None


def record_checkin(
    *,
    services: Services,
    checkin: ValidCheckin,
    by: Actor,
    source: str,
    submission_key: str | None = None,
    wish: ValidRequest | None = None,
    sender: str | None = None,
) -> CheckinResult:
    """Record a check-in (and the review it asks for: `wish`, or one made from the check-in);
    a repeated submission_key returns the first. `source` is the surface: slack, teams, shell
    or web. A public page's `sender` (public.address_key) counts toward public.PER_HOUR;
    TooMany past it."""
    try:
        return _record(services, checkin, by, source, submission_key, wish, sender)
    except IntegrityError:
        # Two copies of one submission raced; the other one won and holds the check-in.
        if submission_key is None:
            raise
        with services.db.unit_of_work() as uow:
            existing, _ = _still_open(uow, submission_key)
        if existing is None:
            raise
        return existing


def _record(
    services: Services,
    checkin: ValidCheckin,
    by: Actor,
    source: str,
    submission_key: str | None,
    wish: ValidRequest | None,
    sender: str | None,
) -> CheckinResult:
    now = services.clock.now()
    with services.db.unit_of_work() as uow:
        if submission_key:
            existing, submission_key = _still_open(uow, submission_key)
            if existing:
                return existing
        if sender is not None:
            public.count_submission(uow, sender, now)
        review = None
        if checkin.wants_review:
            wish = wish or review_request(checkin, None)
            review = add_review(uow, services, wish, by, now=now)
        row = uow.checkins.add(
            Checkin(
                submission_key=submission_key,
                ward=checkin.ward,
                bed=checkin.bed,
                respondent=checkin.respondent,
                not_asked_reason=checkin.not_asked_reason,
                answer=checkin.answer,
                worries=checkin.worries,
                wants_review=checkin.wants_review,
                review_id=review.id if review else None,
                source=source,
                recorded_by=by.user_id,
                recorded_by_name=by.label,
                recorded_at=now,
            )
        )
        if source == "web" and checkin.answer is Answer.WORSE and review is None:
            tell_ward(uow, services, row, now)
        uow.events.record(
            review_id=row.review_id,
            kind="checkin",
            at=now,
            **by.audited,
            checkin=row.id,
            ward=row.ward,
            respondent=row.respondent,
            answer=row.answer or "",
        )
    log.info("check-in %s recorded via %s%s", row.id, source, _raised_log(review))
    return CheckinResult(row, review, True, confirmation(row, review))


WORSE_KEY = "checkin-worse:"  # a public page's "worse", told to its ward's channel


def tell_ward(uow: UnitOfWork, services: Services, checkin: Checkin, now: datetime) -> None:
    """A family said "worse" on the public page, with no staff beside them: the ward's channel
    is told (never their words), so the nurse can offer a review and repeat observations; where
    the ward has no channel on a platform, its outreach channel, to pass on."""
    ward = next((w for w in services.wards if w.name == checkin.ward), None)
    where = f"{checkin.ward} bed {checkin.bed}" if checkin.bed else checkin.ward
    who = "the patient" if checkin.respondent == Respondent.PATIENT else "their family"
    text = (
        f"Daily check-in from the public page, {where}: {who} says they are worse than "
        "yesterday. Please see them, offer a rapid review and repeat their observations."
    )
    told = False
    for route in services.routes:
        address = ward_address(route, ward) if ward is not None else ""
        # Where the ward has no channel here, the outreach team hears it, to pass to the ward.
        note = (
            "" if address else f" ({checkin.ward} has no channel of its own: please tell the ward.)"
        )
        told |= uow.outbox.enqueue(
            key=f"{WORSE_KEY}{checkin.id}:{route.platform}",
            platform=route.platform,
            kind="channel",
            address=address or route.outreach_channel,
            payload=Message(text=text + note).to_json(),
            at=now,
        )
    if not told:
        log.error('check-in %s: a "worse" from the public page reached no channel', checkin.id)


def worse_not_delivered(
    uow: UnitOfWork, services: Services, row: Outbox, reason: str, now: datetime
) -> bool:
    """A "worse" from the public page that its ward's channel would not take (the bot not in
    it, the channel archived): the outreach channel hears it instead, with why, to pass to the
    ward. False for any other message, or one that already went to the outreach channel."""
    route = next((r for r in services.routes if r.platform == row.platform), None)
    if not row.key.startswith(WORSE_KEY) or route is None or row.address == route.outreach_channel:
        return False
    text = Message.from_json(row.payload).text
    note = f" (It could not be posted in the ward's channel: {reason}. Please tell the ward.)"
    return uow.outbox.enqueue(
        key=f"{row.key}:outreach",
        platform=row.platform,
        kind="channel",
        address=route.outreach_channel,
        payload=Message(text=text + note).to_json(),
        at=now,
    )


def _raised_log(review: Review | None) -> str:
    return f", raised {format_reference(review.id or 0)}" if review else ""


def _still_open(uow: UnitOfWork, key: str) -> tuple[CheckinResult | None, str]:
    """The check-in the form with `key` recorded: a double tap or a reload. Once the review it
    raised is closed or cancelled, the same form sent again (the patient worse again) is a new
    check-in and review: None, and the key it is stored under (as reviews.public does)."""
    existing = _existing(uow, key)
    while existing is not None and existing.review is not None:
        if State(existing.review.state).is_open:
            break
        key = f"{key}+{existing.checkin.id}"
        existing = _existing(uow, key)
    return existing, key


def _existing(uow: UnitOfWork, submission_key: str) -> CheckinResult | None:
    row = uow.checkins.by_submission_key(submission_key)
    if row is None:
        return None
    review = uow.reviews.get(row.review_id) if row.review_id else None
    return CheckinResult(row, review, False, confirmation(row, review))


def review_request(checkin: ValidCheckin, callback_number: str | None) -> ValidRequest:
    """The rapid review a check-in asks for: raised by the patient or family who answered."""
    caller = Caller.PATIENT if checkin.respondent is Respondent.PATIENT else Caller.FAMILY
    answer = checkin.answer.label.lower() if checkin.answer else "not said"
    concern = (
        f"Daily check-in: {checkin.respondent.label.lower()} would like a rapid review now "
        f"(compared with yesterday: {answer})."
    )
    if checkin.worries:
        concern += f" They said: {checkin.worries}"
    return ValidRequest(
        caller=caller,
        ward=checkin.ward,
        bed=checkin.bed,
        nhs_number=None,
        news2=None,
        concern_kind=ConcernKind.UNTRIAGED,
        concern=concern,
        callback_number=callback_number,
        source=Source.CHECKIN,
    )


def confirmation(checkin: Checkin, review: Review | None) -> str:
    """What the person recording it is told: the review's reference, or what to do now."""
    where = f"{checkin.ward} bed {checkin.bed}" if checkin.bed else checkin.ward
    said = Answer(checkin.answer).label.lower() if checkin.answer else "not asked"
    note = f"Check-in recorded for {where}: {said}."
    if review is not None:
        return (
            f"{note} {format_reference(review.id or 0)} raised: the critical care outreach team "
            "has been alerted and will come to the bed."
        )
    if checkin.answer == Answer.WORSE:
        return f"{note} {WORSE_ADVICE}"
    return note


def last_ward(*, services: Services, by: Actor) -> str | None:
    """The ward `by` last recorded a check-in on (None if never): their form starts there."""
    with services.db.reading() as uow:
        return uow.checkins.last_ward(by.platform, by.user_id)


def ward_day(*, services: Services, ward: str, day: date) -> list[str]:
    """A ward's check-ins on one local day, a line each in bed order (no free text)."""
    start = datetime.combine(day, time(0), tzinfo=services.timezone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=services.timezone)
    with services.db.reading() as uow:
        rows = uow.checkins.for_ward(ward, start, end.astimezone(UTC))
    return [
        f"bed {row.bed or '?'} · {local_time(row.recorded_at, services.timezone)} · "
        f"{who_answered(row.respondent, row.not_asked_reason)} · "
        f"{Answer(row.answer).label.lower() if row.answer else 'no answer'}"
        + (f" · {format_reference(row.review_id)}" if row.review_id else "")
        for row in rows
    ]
