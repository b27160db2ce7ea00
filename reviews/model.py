"""The rapid review: its vocabulary, its form, and the states it moves through.

raised -> acknowledged -> attending -> closed (with an outcome); any open state -> cancelled.
Attending or recording an outcome straight from `raised` also counts as acknowledging: an
outreach nurse who walks onto the ward has, in effect, acknowledged the call.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, TypeVar

from reviews.text import LONG_NUMBER, NEWS2, PHONE, bound
from reviews.text import clean_text as clean_text


class State(StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    ATTENDING = "attending"
    CLOSED = "closed"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        return self in (State.RAISED, State.ACKNOWLEDGED, State.ATTENDING)


OPEN_STATES = (State.RAISED, State.ACKNOWLEDGED, State.ATTENDING)


class Caller(StrEnum):
    STAFF = "staff"
    PATIENT = "patient"
    FAMILY = "family"  # family, carer or advocate

    @property
    def label(self) -> str:
        return CALLER_LABELS[self]


CALLER_LABELS = {
    Caller.STAFF: "Staff",
    Caller.PATIENT: "Patient",
    Caller.FAMILY: "Family, carer or advocate",
}


class ConcernKind(StrEnum):
    DETERIORATION = "deterioration"
    CLINICAL = "clinical"
    COMMUNICATION = "communication"
    # A patient or family asked on the public page; the outreach team triages it on the call.
    UNTRIAGED = "untriaged"

    @property
    def label(self) -> str:
        return CONCERN_LABELS.get(self, "Raised by patient or family (not yet triaged)")


# The kinds a member of staff chooses on the request form.
CONCERN_LABELS = {
    ConcernKind.DETERIORATION: "Acute deterioration",
    ConcernKind.CLINICAL: "Other clinical concern",
    ConcernKind.COMMUNICATION: "Communication or care coordination",
}


class Source(StrEnum):
    """Where a request came from."""

    FORM = "form"  # a chat request form (Slack, Teams, the shell)
    WEB = "web"  # the public page, by a patient or family
    CHECKIN = "checkin"  # a daily check-in that asked for a rapid review


# The Actor platform of a patient or family on the public pages: nobody to message back there.
WEB_PLATFORM = "web"


class Outcome(StrEnum):
    NO_CHANGE = "no_change"
    CHANGE_IN_CARE = "change_in_care"
    TRANSFER = "transfer"
    REDIRECTED = "redirected"
    NOT_REACHED = "not_reached"

    @property
    def label(self) -> str:
        return OUTCOME_LABELS[self]


OUTCOME_LABELS = {
    Outcome.NO_CHANGE: "No change",
    Outcome.CHANGE_IN_CARE: "Change in care on the ward",
    Outcome.TRANSFER: "Transfer to a higher level of care",
    Outcome.REDIRECTED: "Concern redirected (not deterioration)",
    Outcome.NOT_REACHED: "Caller could not be reached",
}

TRANSFER_DESTINATIONS = ("ICU", "HDU", "CCU", "theatre")


class Action(StrEnum):
    """What a person can press on a request card."""

    ACKNOWLEDGE = "acknowledge"
    ATTEND = "attend"
    RECORD_OUTCOME = "record_outcome"
    CANCEL = "cancel"

    @property
    def label(self) -> str:
        return ACTION_LABELS[self]


ACTION_LABELS = {
    Action.ACKNOWLEDGE: "Acknowledge",
    Action.ATTEND: "Attending",
    Action.RECORD_OUTCOME: "Record outcome",
    Action.CANCEL: "Cancel",
}


def actions_for(state: State) -> tuple[Action, ...]:
    """The buttons a card in `state` offers."""
    if state is State.RAISED:
        return (Action.ACKNOWLEDGE, Action.ATTEND, Action.RECORD_OUTCOME, Action.CANCEL)
    if state is State.ACKNOWLEDGED:
        return (Action.ATTEND, Action.RECORD_OUTCOME, Action.CANCEL)
    if state is State.ATTENDING:
        return (Action.RECORD_OUTCOME, Action.CANCEL)
    return ()


def format_reference(review_id: int) -> str:
    return f"RR-{review_id:04d}"


def parse_reference(text: str) -> int | None:
    match = re.fullmatch(r"\s*(?:RR-?)?0*(\d+)\s*", text, re.IGNORECASE)
    return int(match[1]) if match else None


def nhs_number_is_valid(digits: str) -> bool:
    """Ten digits whose Modulus 11 check digit is right (NHS Data Dictionary)."""
    if not re.fullmatch(r"[0-9]{10}", digits):
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def mask_nhs_number(digits: str | None) -> str | None:
    """The most of an NHS number any card shows: its last four digits."""
    return f"***{digits[-4:]}" if digits else None


@dataclass(frozen=True)
class ReviewForm:
    """What a person typed into the request form, before validation."""

    caller: str = ""
    ward: str = ""
    bed: str = ""
    nhs_number: str = ""
    news2: str = ""
    concern_kind: str = ""
    concern: str = ""
    callback_number: str = ""


@dataclass(frozen=True)
class ValidRequest:
    caller: Caller
    ward: str
    bed: str
    nhs_number: str | None
    news2: int | None
    concern_kind: ConcernKind
    concern: str
    callback_number: str | None
    source: Source = Source.FORM
    # Only from the public page; they go privately to whoever takes the request, never a card.
    caller_name: str | None = None
    patient_name: str | None = None
    relationship: str | None = None
    spoken_to_ward: bool | None = None

    @property
    def patient_or_family(self) -> bool:
        return self.caller in (Caller.PATIENT, Caller.FAMILY)


def fingerprint(form: Any) -> str:
    """A digest of what a validated form (a dataclass) says, for a submission key beside the
    platform's form id: the platform's retry of one submission is recorded once, while other
    answers sent on a form that did not refresh (the next bed, a corrected one) are recorded
    too, never taken for that retry."""
    said = json.dumps(asdict(form), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(said.encode()).hexdigest()[:32]


LONG_NUMBER_ERROR = (
    "That looks like an NHS or phone number: the ward and bed go on the card and in texts to "
    "pagers, so put an NHS number in its own box."
)


def refuse_long_numbers(fields: dict[str, str], errors: dict[str, str]) -> None:
    """Put LONG_NUMBER_ERROR on each of `fields` (name -> cleaned text) holding what looks like
    an NHS or phone number, unless it has an error already."""
    for field, text in fields.items():
        if field not in errors and LONG_NUMBER.search(text):
            errors[field] = LONG_NUMBER_ERROR


class FormErrors(ValueError):
    """Field name -> a sentence saying what to fix. Field names are ReviewForm's."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def validate(form: ReviewForm) -> ValidRequest:
    """Check a submitted form; raise FormErrors naming each bad field."""
    errors: dict[str, str] = {}
    caller = _choice(Caller, form.caller, "caller", "Choose who is raising this request.", errors)
    concern_kind = _choice(
        ConcernKind, form.concern_kind, "concern_kind", "Choose the kind of concern.", errors
    )
    if concern_kind is ConcernKind.UNTRIAGED:  # the public page's own kind, not a staff choice
        errors["concern_kind"], concern_kind = "Choose the kind of concern.", None
    ward, bed = clean_text(form.ward), clean_text(form.bed)
    concern = clean_text(form.concern, multiline=True)
    if not ward:
        errors["ward"] = "Enter the ward."
    bound("ward", ward, "Keep the ward name under 60 characters.", errors)
    bound("bed", bed, "Keep the bed under 20 characters.", errors)
    refuse_long_numbers({"ward": ward, "bed": bed}, errors)
    if not concern:
        errors["concern"] = "Say what worries you."
    bound("concern", concern, "Keep it under 2,000 characters; the team will call.", errors)
    nhs_number = re.sub(r"[ -]", "", clean_text(form.nhs_number))
    if nhs_number and not nhs_number_is_valid(nhs_number):
        errors["nhs_number"] = (
            "That is not a valid NHS number: its check digit is wrong, so a digit may be "
            "mistyped. Leave it blank if unsure."
            if re.fullmatch(r"[0-9]{10}", nhs_number)
            else "That is not a valid NHS number (10 digits). Leave it blank if unsure."
        )
    news2 = _news2(clean_text(form.news2), errors)
    callback = clean_text(form.callback_number)
    if caller in (Caller.PATIENT, Caller.FAMILY) and not callback:
        errors["callback_number"] = "Give a number the outreach team can call back."
    elif callback and not PHONE.fullmatch(callback):
        errors["callback_number"] = "Enter a phone number or extension (digits, spaces, +)."
    if errors or caller is None or concern_kind is None:
        raise FormErrors(errors)
    return ValidRequest(
        caller=caller,
        ward=ward,
        bed=bed,
        nhs_number=nhs_number or None,
        news2=news2,
        concern_kind=concern_kind,
        concern=concern,
        callback_number=callback or None,
    )


def validate_reason(reason: str) -> str:
    """A cancellation's reason, cleaned; FormErrors on "reason" if empty or too long."""
    errors: dict[str, str] = {}
    reason = clean_text(reason, multiline=True)
    if not reason:
        errors["reason"] = "Say why it is being cancelled."
    bound("reason", reason, "Keep the reason under 500 characters.", errors)
    if errors:
        raise FormErrors(errors)
    return reason


def validate_outcome(chosen: str, destination: str, note: str) -> tuple[Outcome, str]:
    """An outcome and its detail: the destination of a transfer, else the optional note.
    FormErrors on "outcome", "destination" or "note"."""
    errors: dict[str, str] = {}
    outcome = _choice(Outcome, chosen, "outcome", "Choose an outcome.", errors)
    destination, note = clean_text(destination), clean_text(note, multiline=True)
    if outcome is Outcome.TRANSFER and destination not in TRANSFER_DESTINATIONS:
        errors["destination"] = (
            f"Say where the patient was transferred: {', '.join(TRANSFER_DESTINATIONS)}."
        )
    bound("note", note, "Keep the note under 500 characters.", errors)
    if errors or outcome is None:
        raise FormErrors(errors)
    return outcome, destination if outcome is Outcome.TRANSFER else note


E = TypeVar("E", bound=StrEnum)


def _choice(
    kind: type[E], value: str, field: str, message: str, errors: dict[str, str]
) -> E | None:
    try:
        return kind(value)
    except ValueError:
        errors[field] = message
        return None


def _news2(value: str, errors: dict[str, str]) -> int | None:
    if not value:
        return None
    if not NEWS2.fullmatch(value) or not 0 <= int(value) <= 20:
        errors["news2"] = "NEWS2 is a whole number from 0 to 20. Leave it blank if not scored."
        return None
    return int(value)
