"""Adaptive Cards: the request card, its buttons, the request form and short answers.

Buttons are Action.Execute (Universal Actions: Teams answers with a refreshed card at once)
with an Action.Submit fallback for clients that do not support them. Each button's data names
the action and the review; the form's inputs are named after reviews.model.ReviewForm's fields,
so a FormErrors dict maps straight back onto the card.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from reviews.messages import Message, ReviewView
from reviews.model import (
    CALLER_LABELS,
    CONCERN_LABELS,
    OUTCOME_LABELS,
    TRANSFER_DESTINATIONS,
    Action,
)

Card = dict[str, Any]
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"  # Teams: Universal Actions need 1.5; older clients use the fallback
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
RAISE = "raise"  # the form's verb; the card buttons' verbs are reviews.model.Action values


def adaptive_card(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None) -> Card:
    card: Card = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION, "body": body}
    if actions:
        card["actions"] = actions
    return card


def inert(value: str) -> str:
    """`value` unable to link, mention or format as HTML however Teams renders it (plain,
    markdown, HTML, a TextBlock): an invisible zero-width space after every "]" breaks
    markdown links ([Acknowledge](https://…)) and after every "<" breaks tags (<at>, <a …>)
    and <https://…> autolinks. Backslash escapes are not used: Teams' clients differ on them."""
    return value.replace("]", "]\u200b").replace("<", "<\u200b")


def text(value: str, **style: Any) -> dict[str, Any]:
    """A TextBlock; what it says is made inert, since people's words reach it."""
    return {"type": "TextBlock", "text": inert(value), "wrap": True, **style}


def execute(title: str, verb: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An Action.Execute whose fallback Action.Submit carries the same verb and data."""
    data = {**data, "rr_verb": verb}
    fallback = {"type": "Action.Submit", "title": title, "data": data}
    return {
        "type": "Action.Execute",
        "title": title,
        "verb": verb,
        "data": data,
        "fallback": fallback,
        **extra,
    }


def attachment(card: Card) -> dict[str, Any]:
    return {"contentType": CARD_CONTENT_TYPE, "content": card}


def render(message: Message) -> Card:
    """A neutral message as an Adaptive Card: its text, the review's facts, its buttons and any
    images (the digest chart, inline as a data URI so no file hosting is needed)."""
    body = [text(message.text, weight="Bolder" if message.review else "Default")]
    if message.review:
        body += _review_facts(message.review)
    for picture in message.attachments:
        body.append(
            {
                "type": "Image",
                "url": f"data:image/png;base64,{picture.content_b64}",
                "altText": picture.title,
            }
        )
    actions = [_button(Action(name), message.review) for name in message.actions if message.review]
    return adaptive_card(body, actions)


def _review_facts(review: ReviewView) -> list[dict[str, Any]]:
    facts = [
        ("Ward", review.ward),
        ("Bed", review.bed or "-"),
        (
            "Urgency",
            review.urgency + (f" (NEWS2 {review.news2})" if review.news2 is not None else ""),
        ),
        ("Raised by", review.caller),
        ("Concern", review.concern_kind),
        ("Raised at", review.raised_at),
    ]
    if review.nhs_last4:
        facts.append(("NHS number", review.nhs_last4))
    return [
        {"type": "FactSet", "facts": [{"title": t, "value": inert(v)} for t, v in facts]},
        text(review.concern),
        text(review.state_line, isSubtle=True),
    ]


def _button(action: Action, review: ReviewView | None) -> dict[str, Any]:
    data = {"review": review.review_id if review else 0}
    if action is Action.RECORD_OUTCOME:
        return _show_card(
            action.label,
            [
                _choices("outcome", "Outcome", OUTCOME_LABELS),
                _choices(
                    "destination",
                    "Transferred to (only for a transfer)",
                    {d: d for d in TRANSFER_DESTINATIONS},
                    compact=True,
                ),
                {
                    "type": "Input.Text",
                    "id": "note",
                    "label": "Note",
                    "isMultiline": True,
                    "maxLength": 500,
                },
            ],
            execute("Record", action.value, data),
        )
    if action is Action.CANCEL:
        return _show_card(
            action.label,
            [
                {
                    "type": "Input.Text",
                    "id": "reason",
                    "label": "Why is it being cancelled?",
                    "isMultiline": True,
                    "maxLength": 500,
                },
            ],
            execute("Cancel request", action.value, data),
        )
    return execute(action.label, action.value, data)


def _show_card(title: str, inputs: list[dict[str, Any]], submit: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Action.ShowCard", "title": title, "card": adaptive_card(inputs, [submit])}


def _choices(
    field: str, label: str, labels: dict[Any, str], *, compact: bool = False, value: str = ""
) -> dict[str, Any]:
    choice_set: dict[str, Any] = {
        "type": "Input.ChoiceSet",
        "id": field,
        "label": label,
        "style": "compact" if compact else "expanded",
        "choices": [{"title": v, "value": str(k)} for k, v in labels.items()],
    }
    if value:
        choice_set["value"] = value
    return choice_set


def request_form(
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    form_id: str | None = None,
    wards: Sequence[str] = (),
) -> Card:
    """The request form of CONTRACT.md. `form_id` makes a resubmission of the same form find
    the review it raised; a new form gets a new one. `wards`: the wards file's names."""
    values, errors = values or {}, errors or {}
    form_id = form_id or uuid.uuid4().hex
    if values.get("ward") and values["ward"] not in wards:
        values = {**values, "ward_other": values["ward"]}  # it was typed: refill the box

    def field(element: dict[str, Any]) -> list[dict[str, Any]]:
        name = element["id"]
        if values.get(name) and element["type"] == "Input.Text":
            element["value"] = values[name]
        if name in errors:
            return [element, text(errors[name], color="Attention", size="Small", spacing="None")]
        return [element]

    def line(name: str, label: str, placeholder: str = "", **extra: Any) -> list[dict[str, Any]]:
        return field(
            {"type": "Input.Text", "id": name, "label": label, "placeholder": placeholder, **extra}
        )

    body = [
        text("Rapid review", weight="Bolder", size="Medium"),
        text(
            "Ask the critical care outreach team to review a patient. "
            "**If the patient is peri-arrest, call 2222 now.**"
        ),
        *field(
            _choices("caller", "Who is raising it?", CALLER_LABELS, value=values.get("caller", ""))
        ),
        *(
            [
                *field(
                    _choices(
                        "ward",
                        "Ward",
                        {name: name for name in wards},
                        compact=True,
                        value=values.get("ward", "") if values.get("ward") in wards else "",
                    )
                ),
                *line("ward_other", "Ward not listed (only if it is not above)", maxLength=60),
            ]
            if wards
            else line("ward", "Ward", "e.g. Ward 7", maxLength=60)
        ),
        *line("bed", "Bed", "e.g. 12", maxLength=20),
        *line("nhs_number", "NHS number (optional)", "10 digits", maxLength=12),
        *line("news2", "NEWS2 score (optional)", "0-20", maxLength=2),
        *field(
            _choices(
                "concern_kind",
                "Kind of concern",
                CONCERN_LABELS,
                value=values.get("concern_kind", ""),
            )
        ),
        *line("concern", "What worries you?", isMultiline=True, maxLength=2000),
        *line(
            "callback_number",
            "Call-back number (patient or family requests)",
            "phone or extension",
            maxLength=20,
        ),
    ]
    if errors:
        body.insert(2, text("Please fix the fields marked below.", color="Attention"))
    return adaptive_card(body, [execute("Raise", RAISE, {"rr_form": form_id})])


def said(title: str, *lines: str, attention: bool = False) -> Card:
    """A card that only says something: what happened, or why not."""
    heading = text(title, weight="Bolder", color="Attention" if attention else "Default")
    return adaptive_card([heading, *(text(line) for line in lines)])


def alarm(title: str, headline: str, fallback_contact: str) -> Card:
    """The team may not have what the person asked for: say so, and how to reach them."""
    return said(
        title, headline, f"**Contact them directly now:** {fallback_contact}", attention=True
    )
