"""The public page's daily view (CONTRACT.md "tell us how they are today"): what a patient or
family types, and its rules. Contact details are asked only of someone who wants a review now;
messages are in plain words and say how to fix each field (keys are the HTML field names)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from reviews.checkin_model import Answer, CheckinForm, ValidCheckin, validate_checkin
from reviews.checkins import review_request
from reviews.model import FormErrors, ValidRequest, clean_text
from reviews.public_form import PublicForm, bed_problem, validate_public


@dataclass(frozen=True)
class PublicCheckinForm:
    caller: str = ""  # patient or family
    answer: str = ""  # better, same, worse
    bed: str = ""
    worries: str = ""
    wants_review: str = ""  # yes or no
    your_name: str = ""
    relationship: str = ""
    patient_name: str = ""
    callback_number: str = ""


CONTACT_FIELDS = ("your_name", "patient_name", "relationship", "callback_number")
MESSAGES = {
    "respondent": ("caller", "Select if you are the patient, or family, a carer or a friend"),
    "answer": ("answer", "Select better, about the same, or worse"),
    "bed": ("bed", "Use 20 characters or fewer"),
    "worries": ("worries", "Use 2,000 characters or fewer"),
}


def validate_public_checkin(
    form: PublicCheckinForm, ward_name: str
) -> tuple[ValidCheckin, ValidRequest | None]:
    """The check-in, and the review it asks for (with the caller's contact details) when they
    would like one now. FormErrors keyed by HTML field name otherwise."""
    errors: dict[str, str] = {}
    checkin = None
    try:
        checkin = validate_checkin(
            CheckinForm(
                ward=ward_name,
                bed=form.bed,
                respondent=form.caller if form.caller in ("patient", "family") else "",
                answer=form.answer,
                worries=form.worries,
                wants_review="yes" if form.wants_review == "yes" else "",
            ),
            bed_required=False,
        )
    except FormErrors as problems:
        errors.update(MESSAGES[field] for field in problems.errors if field in MESSAGES)
    bed = clean_text(form.bed)
    # Within 20 characters, the check-in's only objection to a bed is a number in it.
    if (problem := bed_problem(bed)) and ("bed" not in errors or len(bed) <= 20):
        errors["bed"] = problem
    if form.answer not in {a.value for a in Answer}:  # asked even before "who are you?"
        errors["answer"] = MESSAGES["answer"][1]
    if form.wants_review not in ("yes", "no"):
        errors["wants_review"] = "Select yes if you would like a review now, or no"
    contact = None
    if form.wants_review == "yes":
        try:
            contact = validate_public(_contact(form), ward_name)
        except FormErrors as problems:
            # The bed too: a wish for review must never be dropped for a mistake not shown.
            kept = (*CONTACT_FIELDS, "bed")
            errors.update({k: v for k, v in problems.errors.items() if k in kept})
    if errors or checkin is None:
        raise FormErrors(errors)
    if contact is None:
        return checkin, None
    wish = review_request(checkin, contact.callback_number)
    return checkin, replace(
        wish,
        caller_name=contact.caller_name,
        patient_name=contact.patient_name,
        relationship=contact.relationship,
    )


def _contact(form: PublicCheckinForm) -> PublicForm:
    """The request form's contact fields, checked by the request form's own rules."""
    return PublicForm(
        caller=form.caller,
        your_name=form.your_name,
        relationship=form.relationship,
        patient_name=form.patient_name,
        bed=form.bed,
        concern="daily view",  # the review's words come from the check-in itself
        callback_number=form.callback_number,
    )
