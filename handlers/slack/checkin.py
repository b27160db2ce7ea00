"""`/rapidreview checkin`: the daily check-in modal, quick to fill bed after bed.

The ward starts as the one this person used last; after each check-in the modal comes back
empty for the next bed, on the same ward, with what was recorded said at its top. Block ids are
reviews.checkin_model.CheckinForm's field names, so FormErrors go straight back onto the form.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from slack_bolt import Ack, App

from handlers.deadline import NotConfirmed, within_deadline
from handlers.slack.blocks import Block, escape, section
from handlers.slack.forms import (
    _input,
    _modal,
    _radios,
    _text,
    _ward_inputs,
    field_value,
    metadata,
    said_view,
)
from handlers.slack.people import actor
from reviews.checkin_model import (
    ANSWER_LABELS,
    NOT_ASKED_LABELS,
    QUESTION,
    RESPONDENT_LABELS,
    CheckinForm,
    validate_checkin,
)
from reviews.checkins import CheckinResult, record_checkin
from reviews.context import Services
from reviews.model import FormErrors, fingerprint
from reviews.wards import Wards, chosen_ward
from settings import Settings

log = logging.getLogger(__name__)

CHECKIN_FORM = "rapidreview_checkin"
WANTS_REVIEW = "yes"


def checkin_view(
    wards: Sequence[str] = (), ward: str = "", *, done: str = "", count: int = 0
) -> dict[str, Any]:
    """The check-in form, on `ward` (`wards`: the wards file's names); `done` says what the
    last submission recorded."""
    blocks: list[Block] = [section(escape(done))] if done else []
    blocks += [
        *_ward_inputs(wards, ward),
        _input("bed", "Bed", _text("e.g. 12", max_length=20)),
        _input("respondent", "Who answered?", _radios(RESPONDENT_LABELS)),
        _input(
            "not_asked_reason",
            "If not asked, why?",
            {
                "type": "static_select",
                "placeholder": {"type": "plain_text", "text": "Choose"},
                "options": [
                    {"value": k.value, "text": {"type": "plain_text", "text": v}}
                    for k, v in NOT_ASKED_LABELS.items()
                ],
            },
            optional=True,
        ),
        _input("answer", QUESTION, _radios(ANSWER_LABELS), optional=True),
        _input(
            "worries",
            "Anything that worries them?",
            _text("Optional, in their words", multiline=True, max_length=2000),
            optional=True,
        ),
        _input(
            "wants_review",
            "Rapid review",
            {
                "type": "checkboxes",
                "options": [
                    {
                        "value": WANTS_REVIEW,
                        "text": {"type": "plain_text", "text": "They would like one now"},
                    }
                ],
            },
            optional=True,
        ),
    ]
    return _modal(
        CHECKIN_FORM,
        "Daily check-in",
        blocks,
        submit="Record",
        private_metadata=json.dumps({"count": count}),
    )


def read_checkin(values: dict[str, Any], wards: Wards | None = None) -> CheckinForm:
    """What was typed and chosen on the check-in form (not yet validated)."""
    chosen = (values.get("wants_review") or {}).get("value") or {}
    wants = any(o.get("value") == WANTS_REVIEW for o in chosen.get("selected_options") or ())
    fields = {
        name: field_value(values, name)
        for name in CheckinForm.__dataclass_fields__
        if name != "wants_review"
    }
    fields["ward"] = chosen_ward(fields["ward"], field_value(values, "ward_other"), wards)
    return CheckinForm(**fields, wants_review=WANTS_REVIEW if wants else "")


def register(app: App, services: Services, settings: Settings) -> None:
    fallback = services.fallback_contact

    @app.view(CHECKIN_FORM)
    def submit_checkin(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            checkin = validate_checkin(read_checkin(view["state"]["values"], services.wards))
            count = int(metadata(view).get("count") or 0)
        except FormErrors as problems:
            ack(response_action="errors", errors=problems.errors)
            return
        except Exception as error:  # noqa: BLE001 - a form we cannot read must still be answered
            log.error("check-in form from Slack unreadable: %s", type(error).__name__)
            ack(response_action="update", view=not_saved("NOT recorded", fallback))
            return

        def record() -> CheckinResult:
            return record_checkin(
                services=services,
                checkin=checkin,
                by=actor(services, body["user"]),
                source="slack",
                submission_key=f"slack:{view['id']}:{count}:{fingerprint(checkin)}",
            )

        try:
            result = within_deadline(record, "check-in from Slack")
        except NotConfirmed:
            ack(response_action="update", view=not_saved("NOT confirmed", fallback))
            return
        except Exception as error:  # noqa: BLE001 - whatever went wrong, say nothing was saved
            log.error("check-in from Slack NOT recorded: %s", type(error).__name__)
            ack(response_action="update", view=not_saved("NOT recorded", fallback))
            return
        ack(
            response_action="update",
            view=checkin_view(
                services.wards.names(), checkin.ward, done=said(result), count=count + 1
            ),
        )


def said(result: CheckinResult) -> str:
    """The line at the top of the next form: recorded, and the reference or advice in bold."""
    note = result.note
    if result.reference or result.checkin.answer == "worse":
        return f"*{note}*\nNext patient:"
    return f"✓ {note} Next patient:"


def not_saved(title: str, fallback: str) -> dict[str, Any]:
    return said_view(
        f"Check-in {title}",
        f"The bot could not confirm this check-in was saved. If they asked for a rapid review "
        f"or you are worried, contact the outreach team directly now: {fallback}",
    )
