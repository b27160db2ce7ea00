"""The daily check-in's vocabulary and form (Martha's Rule component 3).

"How are you feeling today compared with yesterday?": better / same / worse, asked of the
patient, or of their family, carer or advocate; or not asked, with the reason why.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from reviews.model import FormErrors, clean_text, refuse_long_numbers


class Respondent(StrEnum):
    PATIENT = "patient"
    FAMILY = "family"  # family, carer or advocate
    NOT_ASKED = "not_asked"

    @property
    def label(self) -> str:
        return RESPONDENT_LABELS[self]


RESPONDENT_LABELS = {
    Respondent.PATIENT: "Patient",
    Respondent.FAMILY: "Family, carer or advocate",
    Respondent.NOT_ASKED: "Not asked",
}


class NotAsked(StrEnum):
    ASLEEP = "asleep"
    UNAVAILABLE = "unavailable"
    DECLINED = "declined"
    LACKS_CAPACITY = "lacks_capacity"

    @property
    def label(self) -> str:
        return NOT_ASKED_LABELS[self]


NOT_ASKED_LABELS = {
    NotAsked.ASLEEP: "Asleep",
    NotAsked.UNAVAILABLE: "Unavailable (off the ward)",
    NotAsked.DECLINED: "Declined to answer",
    NotAsked.LACKS_CAPACITY: "Lacks capacity, no family present",
}


class Answer(StrEnum):
    BETTER = "better"
    SAME = "same"
    WORSE = "worse"

    @property
    def label(self) -> str:
        return ANSWER_LABELS[self]


ANSWER_LABELS = {Answer.BETTER: "Better", Answer.SAME: "The same", Answer.WORSE: "Worse"}

QUESTION = "How are you feeling today compared with yesterday?"
WORRIES_LIMIT = 2000
WORSE_ADVICE = (
    "They feel worse than yesterday: offer them a rapid review (they can ask for one at any "
    "time) and repeat their observations now."
)


@dataclass(frozen=True)
class CheckinForm:
    """What was typed or chosen on any check-in form, before validation."""

    ward: str = ""
    bed: str = ""
    respondent: str = ""
    not_asked_reason: str = ""
    answer: str = ""
    worries: str = ""
    wants_review: str = ""  # "yes" when they would like a rapid review now


@dataclass(frozen=True)
class ValidCheckin:
    ward: str
    bed: str
    respondent: Respondent
    not_asked_reason: NotAsked | None
    answer: Answer | None
    worries: str | None
    wants_review: bool


YES = ("yes", "true", "on", "1", "y")


def validate_checkin(form: CheckinForm, *, bed_required: bool = True) -> ValidCheckin:
    """Check a check-in form; FormErrors naming each bad field (CheckinForm's names)."""
    errors: dict[str, str] = {}
    ward, bed = clean_text(form.ward), clean_text(form.bed)
    worries = clean_text(form.worries, multiline=True)
    if not ward:
        errors["ward"] = "Choose the ward."
    elif len(ward) > 60:
        errors["ward"] = "Keep the ward name under 60 characters."
    if bed_required and not bed:
        errors["bed"] = "Enter the bed, so the check-in is this patient's."
    elif len(bed) > 20:
        errors["bed"] = "Keep the bed under 20 characters."
    refuse_long_numbers({"ward": ward, "bed": bed}, errors)  # a review asked for is paged
    if len(worries) > WORRIES_LIMIT:
        errors["worries"] = "Keep it under 2,000 characters."
    respondent = _member(Respondent, form.respondent)
    reason = _member(NotAsked, form.not_asked_reason)
    answer = _member(Answer, form.answer)
    wants_review = form.wants_review.strip().lower() in YES
    if respondent is None:
        errors["respondent"] = "Choose who answered, or why they were not asked."
    elif respondent is Respondent.NOT_ASKED:
        if reason is None:
            errors["not_asked_reason"] = "Say why they were not asked."
        if answer is not None:
            errors["answer"] = "Leave the answer empty when they were not asked."
        if wants_review:
            errors["wants_review"] = (
                "Only the patient or their family can ask for a review here; if you are "
                "worried, raise a request with the request form."
            )
    elif answer is None:
        errors["answer"] = "Choose better, the same or worse."
    if errors or respondent is None:
        raise FormErrors(errors)
    asked = respondent is not Respondent.NOT_ASKED
    return ValidCheckin(
        ward=ward,
        bed=bed,
        respondent=respondent,
        not_asked_reason=None if asked else reason,
        answer=answer if asked else None,
        worries=worries or None,
        wants_review=wants_review and asked,
    )


E = TypeVar("E", bound=StrEnum)


def _member(kind: type[E], value: str) -> E | None:
    try:
        return kind(value.strip())
    except ValueError:
        return None


def who_answered(respondent: str, reason: str | None) -> str:
    """The answerer as people read it: "Patient", or "Not asked: asleep"."""
    if respondent == Respondent.NOT_ASKED and reason:
        return f"Not asked: {NotAsked(reason).label.lower()}"
    return Respondent(respondent).label
