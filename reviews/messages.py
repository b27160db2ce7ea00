"""Neutral outbound messages: what to say and which buttons to offer, never how it looks.

Each platform's sender renders a Message (Block Kit, an Adaptive Card, plain terminal text).
A ReviewView is what any card may show of a review: never the full NHS number and never the
call-back number.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from reviews.model import (
    WEB_PLATFORM,
    Action,
    Caller,
    ConcernKind,
    Outcome,
    Source,
    State,
    actions_for,
    format_reference,
    mask_nhs_number,
)
from rotas.times import local_time as local_time
from storage.tables import Review


@dataclass(frozen=True)
class ReviewView:
    review_id: int
    reference: str
    state: str
    state_line: str
    ward: str
    bed: str
    urgency: str
    news2: int | None
    caller: str
    concern_kind: str
    concern: str
    nhs_last4: str | None
    raised_at: str  # local time, as people read it

    @property
    def headline(self) -> str:
        where = f"{self.ward} bed {self.bed}" if self.bed else self.ward
        return f"{self.reference} · {self.urgency.upper()} · {where}"


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message (the digest's chart). Carried in the outbox row itself, so
    whichever replica delivers the message has it."""

    filename: str
    title: str
    content_b64: str  # base64 of the bytes

    @property
    def content(self) -> bytes:
        return base64.b64decode(self.content_b64)

    @classmethod
    def of(cls, filename: str, title: str, content: bytes) -> Attachment:
        return cls(filename, title, base64.b64encode(content).decode("ascii"))


@dataclass(frozen=True)
class Message:
    text: str
    review: ReviewView | None = None
    actions: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = field(default=())
    level: int | None = None  # the escalation level a text or page is about

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> Message:
        data: dict[str, Any] = json.loads(raw)
        review = ReviewView(**data["review"]) if data.get("review") else None
        return cls(
            text=data["text"],
            review=review,
            actions=tuple(data.get("actions", ())),
            attachments=tuple(Attachment(**a) for a in data.get("attachments", ())),
            level=data.get("level"),
        )


def state_line(review: Review, tz: ZoneInfo) -> str:
    state = State(review.state)
    if state is State.RAISED:
        return f"Waiting for acknowledgement since {local_time(review.raised_at, tz)}"
    if state is State.ACKNOWLEDGED and review.acknowledged_at:
        return (
            f"Acknowledged by {review.acknowledged_by} at {local_time(review.acknowledged_at, tz)}"
        )
    if state is State.ATTENDING and review.attending_at:
        return f"{review.attending_by} attending since {local_time(review.attending_at, tz)}"
    if state is State.CLOSED and review.closed_at and review.outcome:
        return (
            f"Closed by {review.closed_by} at {local_time(review.closed_at, tz)}: "
            f"{Outcome(review.outcome).label}"
            + (f" ({review.outcome_detail})" if review.outcome_detail else "")
        )
    if state is State.CANCELLED and review.cancelled_at:
        return (
            f"Cancelled by {review.cancelled_by} at {local_time(review.cancelled_at, tz)}: "
            f"{review.cancel_reason}"
        )
    return state.value


def caller_label(review: Review) -> str:
    """Who raised it, and that it came from the public page or a daily check-in when it did
    (never their name)."""
    label = Caller(review.caller).label
    if review.source == Source.WEB:
        return f"{label}, from the public page"
    if review.source == Source.CHECKIN:
        online = " on the public page" if review.raised_platform == WEB_PLATFORM else ""
        return f"{label}, from a daily check-in{online}"
    return label


def callback_line(review: Review) -> str:
    """For whoever takes a request, privately: the call-back number and, from the public page,
    the names the caller gave."""
    who = Caller(review.caller).label.lower()
    if review.caller_name:
        who = f"{review.caller_name}, {review.relationship or who}"
    line = f"{format_reference(review.id or 0)}: call back on {review.callback_number} ({who})."
    if review.patient_name:
        line += f" Patient: {review.patient_name}."
    if review.spoken_to_ward is not None:
        line += " They have" + ("" if review.spoken_to_ward else " not") + " spoken to the ward."
    return line


def review_view(review: Review, tz: ZoneInfo) -> ReviewView:
    assert review.id is not None
    return ReviewView(
        review_id=review.id,
        reference=format_reference(review.id),
        state=review.state,
        state_line=state_line(review, tz),
        ward=review.ward,
        bed=review.bed,
        urgency=review.urgency,
        news2=review.news2,
        caller=caller_label(review),
        concern_kind=ConcernKind(review.concern_kind).label,
        concern=review.concern,
        nhs_last4=mask_nhs_number(review.nhs_number),
        raised_at=local_time(review.raised_at, tz),
    )


def card(review: Review, tz: ZoneInfo) -> Message:
    """The request card for the outreach channel, with the buttons its state allows."""
    view = review_view(review, tz)
    actions = tuple(a.value for a in actions_for(State(review.state)))
    return Message(text=f"Rapid review {view.headline}", review=view, actions=actions)


def with_acknowledge(review: Review, tz: ZoneInfo, text: str) -> Message:
    """A direct message about a review, carrying a working Acknowledge button while open."""
    actions = (Action.ACKNOWLEDGE.value,) if review.state == State.RAISED else ()
    return Message(text=text, review=review_view(review, tz), actions=actions)


def minutes(seconds: float) -> str:
    whole = int(seconds // 60)
    return "under a minute" if whole < 1 else f"{whole} min"


OPEN_LISTED = 20  # a chat message lists the oldest this many and says how many more


@dataclass(frozen=True)
class OpenList:
    """Requests not yet closed, oldest first: a line each (never an identifier) and the total."""

    total: int
    lines: tuple[str, ...]

    @classmethod
    def of(cls, total: int, oldest: Sequence[Review], tz: ZoneInfo) -> OpenList:
        return cls(total, tuple(open_line(review, tz) for review in oldest))

    def text(
        self, *, bold: str = "", escape: Callable[[str], str] = str, newline: str = "\n"
    ) -> str:
        """The list as a message; `bold` is the platform's marker (Slack *, Teams **), and
        `newline` its line break (Teams markdown needs a blank line)."""
        if not self.total:
            return "No open requests."
        heading = f"{bold}Open requests{bold} ({self.total}), oldest first:"
        more = self.total - len(self.lines)
        tail = [f"…and {more} more."] if more > 0 else []
        return newline.join([heading, *(f"• {escape(line)}" for line in self.lines), *tail])


def open_line(review: Review, tz: ZoneInfo) -> str:
    where = f"{review.ward} bed {review.bed}" if review.bed else review.ward
    state = "not yet acknowledged" if review.state == State.RAISED else review.state
    return (
        f"{format_reference(review.id or 0)} · {review.urgency} · {where} · {state} · "
        f"raised {local_time(review.raised_at, tz)}"
    )
