"""Teams `checkin`: the daily check-in as an Adaptive Card, ready for the next bed after each.

The inputs are named after reviews.checkin_model.CheckinForm's fields, so FormErrors land
beside the right input. Each card carries its own form id: the Bot Framework retrying one press
finds the check-in it recorded; the next card (the next bed) is a new form.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from handlers.teams.cards import Card, _choices, adaptive_card, execute, said, text
from handlers.teams.people import actor
from reviews.checkin_model import (
    ANSWER_LABELS,
    NOT_ASKED_LABELS,
    QUESTION,
    RESPONDENT_LABELS,
    CheckinForm,
    validate_checkin,
)
from reviews.checkins import last_ward, record_checkin
from reviews.context import Services
from reviews.model import FormErrors, fingerprint
from reviews.wards import chosen_ward

log = logging.getLogger(__name__)

CHECKIN = "checkin"  # the card's verb


def checkin_card(
    wards: Sequence[str],
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    *,
    done: str = "",
) -> Card:
    """The check-in form (`wards`: the wards file's names); `values` refill it (the ward for
    the next bed), `done` heads it."""
    values, errors = values or {}, errors or {}
    if wards and values.get("ward") and values["ward"] not in wards:
        values = {**values, "ward": "", "ward_other": values["ward"]}  # typed: refill the box

    def field(element: dict[str, Any]) -> list[dict[str, Any]]:
        name = element["id"]
        if values.get(name):
            element["value"] = values[name]
        if name in errors:
            return [element, text(errors[name], color="Attention", size="Small", spacing="None")]
        return [element]

    def line(name: str, label: str, **extra: Any) -> list[dict[str, Any]]:
        return field({"type": "Input.Text", "id": name, "label": label, **extra})

    body = [text("Daily check-in", weight="Bolder", size="Medium")]
    if done:
        body.append(text(done, weight="Bolder"))
    if errors:
        body.append(text("Please fix the fields marked below.", color="Attention"))
    body += [
        *(
            [
                *field(_choices("ward", "Ward", {name: name for name in wards}, compact=True)),
                *line("ward_other", "Ward not listed (only if it is not above)", maxLength=60),
            ]
            if wards
            else line("ward", "Ward", placeholder="e.g. Ward 7", maxLength=60)
        ),
        *line("bed", "Bed", placeholder="e.g. 12", maxLength=20),
        *field(_choices("respondent", "Who answered?", RESPONDENT_LABELS)),
        *field(_choices("not_asked_reason", "If not asked, why?", NOT_ASKED_LABELS, compact=True)),
        *field(_choices("answer", QUESTION, ANSWER_LABELS)),
        *line(
            "worries", "Anything that worries them? (optional)", isMultiline=True, maxLength=2000
        ),  # fmt: skip
        *field(
            {
                "type": "Input.Toggle",
                "id": "wants_review",
                "title": "They would like a rapid review now",
                "valueOn": "yes",
                "valueOff": "",
            }
        ),
    ]
    return adaptive_card(body, [execute("Record", CHECKIN, {"rr_form": uuid.uuid4().hex})])


def open_card(services: Services, activity: dict[str, Any]) -> Card:
    """A new check-in form on the ward this person used last."""
    by = actor(services, activity)
    return checkin_card(services.wards.names(), {"ward": last_ward(services=services, by=by) or ""})


def record(services: Services, activity: dict[str, Any], data: dict[str, Any]) -> Card:
    """Record a submitted check-in card; the card to answer with (the next one, or why not)."""
    typed = {name: str(data.get(name) or "") for name in CheckinForm.__dataclass_fields__}
    typed["ward"] = chosen_ward(typed["ward"], str(data.get("ward_other") or ""), services.wards)
    wards = services.wards.names()
    try:
        checkin = validate_checkin(CheckinForm(**typed))
    except FormErrors as problems:
        return checkin_card(wards, typed, problems.errors)
    try:
        by = actor(services, activity)
        # One person's one card, narrowed to what it says: the next bed recorded on a card
        # still open on their other device is not taken for a retry of this one.
        form = f"{data.get('rr_form') or uuid.uuid4().hex}:{by.user_id}:{fingerprint(checkin)}"
        result = record_checkin(
            services=services,
            checkin=checkin,
            by=by,
            source="teams",
            submission_key="teams:checkin:" + hashlib.sha256(form.encode()).hexdigest(),
        )
    except Exception as error:  # noqa: BLE001 - whatever went wrong, say nothing was recorded
        log.error("check-in from Teams NOT recorded: %s", type(error).__name__)
        return said(
            "Check-in NOT recorded",
            "The bot could not save this check-in. If they asked for a rapid review or you are "
            f"worried, contact the outreach team directly now: {services.fallback_contact}",
            attention=True,
        )
    return checkin_card(wards, {"ward": checkin.ward}, done=f"{result.note} Next patient:")
