"""The modals: the request form, the outcome form, the cancel form, and what they say after.

Block ids are the field names of reviews.model.ReviewForm, so a FormErrors dict goes straight
back to Slack as `response_action: errors` on the right fields.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from handlers.slack.blocks import Block, escape, plain, section
from reviews.model import (
    CALLER_LABELS,
    CONCERN_LABELS,
    OUTCOME_LABELS,
    TRANSFER_DESTINATIONS,
    ReviewForm,
)
from reviews.wards import Wards, chosen_ward

REQUEST_FORM = "rapidreview_request"
OUTCOME_FORM = "rapidreview_outcome"
CANCEL_FORM = "rapidreview_cancel"
VALUE = "value"


def _option(value: str, label: str) -> dict[str, Any]:
    return {"value": value, "text": plain(label)}


def _input(
    block_id: str, label: str, element: dict[str, Any], *, optional: bool = False, hint: str = ""
) -> Block:
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": plain(label),
        "element": {**element, "action_id": VALUE},
        "optional": optional,
    }
    if hint:
        block["hint"] = plain(hint)
    return block


def _text(placeholder: str = "", *, multiline: bool = False, max_length: int = 0) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "multiline": multiline}
    if placeholder:
        element["placeholder"] = plain(placeholder)
    if max_length:
        element["max_length"] = max_length
    return element


def _radios(labels: dict[Any, str]) -> dict[str, Any]:
    return {"type": "radio_buttons", "options": [_option(k.value, v) for k, v in labels.items()]}


def _modal(
    callback_id: str,
    title: str,
    blocks: list[Block],
    *,
    submit: str = "",
    private_metadata: str = "",
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title[:24]),
        "close": plain("Close"),
        "blocks": blocks,
        "private_metadata": private_metadata,
    }
    if submit:
        view["submit"] = plain(submit)
    return view


def _ward_inputs(wards: Sequence[str], chosen: str = "") -> list[Block]:
    """A free-text ward, or with a wards file its wards and a box for one not listed;
    `chosen` starts chosen (or typed, when it is not a listed ward)."""
    if not wards:
        typed = {"initial_value": chosen} if chosen else {}
        return [_input("ward", "Ward", {**_text("e.g. Ward 7", max_length=60), **typed})]
    choose: dict[str, Any] = {
        "type": "static_select",
        "placeholder": plain("Choose the ward"),
        "options": [_option(name, name) for name in wards[:100]],  # Slack's limit
    }
    other = _text("e.g. Discharge lounge", max_length=60)
    if chosen in wards[:100]:
        choose["initial_option"] = _option(chosen, chosen)
    elif chosen:
        other["initial_value"] = chosen
    return [
        _input("ward", "Ward", choose, optional=True),
        _input(
            "ward_other",
            "Ward not listed",
            other,
            optional=True,
            hint="Only if the ward is not in the list.",
        ),
    ]


def request_view(wards: Sequence[str] = ()) -> dict[str, Any]:
    """The request form of CONTRACT.md; `wards` are the wards file's names."""
    return _modal(
        REQUEST_FORM,
        "Rapid review",
        [
            section(
                "Ask the critical care outreach team to review a patient. "
                "*If the patient is peri-arrest, call 2222 now.*"
            ),
            _input("caller", "Who is raising it?", _radios(CALLER_LABELS)),
            *_ward_inputs(wards),
            _input("bed", "Bed", _text("e.g. 12", max_length=20), optional=True),
            _input(
                "nhs_number",
                "NHS number",
                _text("10 digits", max_length=12),
                optional=True,
                hint="Optional. Leave blank if unsure.",
            ),
            _input(
                "news2",
                "NEWS2 score",
                _text("0-20", max_length=2),
                optional=True,
                hint="Optional. The latest score, if one was taken.",
            ),
            _input("concern_kind", "Kind of concern", _radios(CONCERN_LABELS)),
            _input("concern", "What worries you?", _text(multiline=True, max_length=2000)),
            _input(
                "callback_number",
                "Call-back number",
                _text("phone or extension", max_length=20),
                optional=True,
                hint="Required when a patient or family member raises it.",
            ),
        ],
        submit="Raise",
    )


def read_request(values: dict[str, Any], wards: Wards | None = None) -> ReviewForm:
    """What was typed into the request form, as a ReviewForm (not yet validated)."""
    typed = {name: field_value(values, name) for name in ReviewForm.__dataclass_fields__}
    typed["ward"] = chosen_ward(typed["ward"], field_value(values, "ward_other"), wards)
    return ReviewForm(**typed)


def field_value(values: dict[str, Any], block_id: str) -> str:
    """The text typed or the option chosen in one input block; "" when left empty."""
    element = (values.get(block_id) or {}).get(VALUE) or {}
    selected = element.get("selected_option")
    if selected:
        return str(selected.get("value") or "")
    return str(element.get("value") or "")


def outcome_view(review_id: int, reference: str) -> dict[str, Any]:
    return _modal(
        OUTCOME_FORM,
        "Record outcome",
        [
            section(f"*{reference}*: how did the review end?"),
            _input("outcome", "Outcome", _radios(OUTCOME_LABELS)),
            _input(
                "destination",
                "Transferred to",
                {
                    "type": "static_select",
                    "placeholder": plain("Choose"),
                    "options": [_option(d, d) for d in TRANSFER_DESTINATIONS],
                },
                optional=True,
                hint="Only for a transfer to a higher level of care.",
            ),
            _input(
                "note", "Note", _text("Optional", multiline=True, max_length=500), optional=True
            ),
        ],
        submit="Record",
        private_metadata=json.dumps({"review": review_id}),
    )


def cancel_view(review_id: int, reference: str) -> dict[str, Any]:
    return _modal(
        CANCEL_FORM,
        "Cancel request",
        [
            section(
                f"Cancel *{reference}*? The outreach team and the person who raised it are told."
            ),
            _input("reason", "Why is it being cancelled?", _text(multiline=True, max_length=500)),
        ],
        submit="Cancel request",
        private_metadata=json.dumps({"review": review_id}),
    )


def metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def said_view(title: str, text: str) -> dict[str, Any]:
    """A modal that only says something (what happened, or why not), with a Close button."""
    return _modal("rapidreview_said", title, [section(escape(text))])


def raised_view(reference: str, fallback_contact: str) -> dict[str, Any]:
    return _modal(
        "rapidreview_said",
        "Request raised",
        [
            section(
                f"*{reference} raised.* The outreach team has been alerted and will "
                "acknowledge it here; you will get a message when they do."
            ),
            section(f"*If the patient worsens before they arrive:* {escape(fallback_contact)}"),
        ],
    )


def already_raised_view(reference: str, fallback_contact: str) -> dict[str, Any]:
    """The same submission arrived again: nothing new was stored, the first one stands."""
    return _modal(
        "rapidreview_said",
        "Already raised",
        [
            section(f"*This request was already raised as {reference}.* Nothing new was added."),
            section(f"*If the patient worsens before they arrive:* {escape(fallback_contact)}"),
        ],
    )


def not_confirmed_view(fallback_contact: str) -> dict[str, Any]:
    """The database did not answer in time: the request may or may not be recorded."""
    return _alarm(
        "NOT confirmed",
        "*NOT CONFIRMED.* The bot could not confirm in time that this request was saved, so do "
        "not rely on the outreach team having been alerted.",
        fallback_contact,
    )


def not_recorded_view(fallback_contact: str) -> dict[str, Any]:
    return _alarm(
        "NOT recorded",
        "*NOTHING WAS RECORDED.* The bot could not save this request, so the outreach team has "
        "NOT been alerted.",
        fallback_contact,
    )


def _alarm(title: str, headline: str, fallback_contact: str) -> dict[str, Any]:
    """A request the team may not have: say so, and how to reach them directly."""
    return _modal(
        "rapidreview_said",
        title,
        [section(headline), section(f"*Contact them directly now:* {escape(fallback_contact)}")],
    )
