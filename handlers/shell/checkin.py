"""`checkin` at the keyboard: the daily check-in's questions, each answer checked as typed by
the core's own rules (reviews.checkin_model), then recorded like any other surface's."""

from __future__ import annotations

from collections.abc import Callable

from handlers.shell.forms import Answers, Question, fill, ward_question
from handlers.shell.terminal import Terminal
from handlers.shell.trial import SHELL_USER
from reviews.checkin_model import (
    ANSWER_LABELS,
    NOT_ASKED_LABELS,
    QUESTION,
    RESPONDENT_LABELS,
    CheckinForm,
    Respondent,
    validate_checkin,
)
from reviews.checkins import last_ward, record_checkin, ward_day
from reviews.context import Services
from reviews.model import FormErrors
from reviews.wards import Wards


def checkin_check(field: str, last: str = "") -> Callable[[Answers], str | None]:
    """The core's verdict on one answer, given the answers so far (an empty ward: `last`)."""

    def check(answers: Answers) -> str | None:
        try:
            validate_checkin(CheckinForm(**{**answers, "ward": answers.get("ward") or last}))
        except FormErrors as errors:
            return errors.errors.get(field)
        return None

    return check


def _asked(answers: Answers) -> bool:
    return answers.get("respondent") != Respondent.NOT_ASKED


def checkin_form(wards: Wards, last: str) -> tuple[Question, ...]:
    """The questions; the ward offers the wards file's and starts on the last one used."""
    ward = "Ward" + (f" (Enter for {last})" if last else "") + ":"
    return (
        ward_question(ward, wards, checkin_check("ward", last)),
        Question("bed", "Bed:", check=checkin_check("bed")),
        Question(
            "respondent",
            "Who answered?",
            {r.value: label for r, label in RESPONDENT_LABELS.items()},
            checkin_check("respondent"),
        ),
        Question(
            "not_asked_reason",
            "Why not asked?",
            {r.value: label for r, label in NOT_ASKED_LABELS.items()},
            checkin_check("not_asked_reason"),
            when=lambda answers: not _asked(answers),
        ),
        Question(
            "answer",
            QUESTION,
            {a.value: label for a, label in ANSWER_LABELS.items()},
            checkin_check("answer"),
            when=_asked,
        ),
        Question("worries", "Anything that worries them (optional):", when=_asked),
        Question(
            "wants_review",
            "Would they like a rapid review now?",
            {"no": "No", "yes": "Yes"},
            lambda answers: None if answers["wants_review"] in ("yes", "no") else "Yes or no?",
            when=_asked,
        ),
    )


def todays_checkins(services: Services, args: list[str]) -> str:
    """`checkins [WARD]`: the ward's check-ins today (default: the last ward used)."""
    ward = " ".join(args) or last_ward(services=services, by=SHELL_USER) or ""
    if not ward:
        return "Which ward? e.g. checkins Ward 7"
    # Found as the forms find it: "Ward 7", "7", or the code of the page's address, "ward-7".
    ward = ward_question("Ward:", services.wards).value(ward)
    names = services.wards.names()
    # Staff may record a ward not on the list, so it is said rather than refused.
    listed = ward in names or not names
    heading_note = "" if listed else f" (not a ward of the wards file: {', '.join(names)})"
    today = services.clock.now().astimezone(services.timezone).date()
    lines = ward_day(services=services, ward=ward, day=today)
    heading = f"Check-ins on {ward} today: {len(lines)}{heading_note}"
    return "\n".join([heading, *(f"  {line}" for line in lines)])


def checkin(services: Services, terminal: Terminal) -> str:
    """Ask, record, and what to say (the reference, or what to do for "worse").
    Cancelled on Ctrl-C or Ctrl-D; DatabaseUnavailable if nothing could be recorded."""
    last = last_ward(services=services, by=SHELL_USER) or ""
    answers = fill(terminal, checkin_form(services.wards, last))
    answers["ward"] = answers["ward"] or last
    answers["wants_review"] = "yes" if answers.get("wants_review") == "yes" else ""
    valid = validate_checkin(CheckinForm(**answers))  # every answer has passed its own check
    result = record_checkin(services=services, checkin=valid, by=SHELL_USER, source="shell")
    return result.note
