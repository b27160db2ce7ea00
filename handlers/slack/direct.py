"""The Messages tab: a direct message to the bot is answered with the help text and a button
that opens the request form, so a nurse who types to the bot is never met with silence."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.slack.blocks import plain, section
from handlers.slack.commands import HELP
from handlers.slack.forms import request_view
from handlers.slack.people import tell
from reviews.context import Services
from settings import Settings

log = logging.getLogger(__name__)

OPEN_FORM = "open_request_form"


def register(app: App, services: Services, settings: Settings) -> None:
    @app.event("message")
    def direct_message(event: dict[str, Any], client: WebClient) -> None:
        # Only a person's own words in a DM: never our own replies (a loop) or edits.
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        client.chat_postMessage(channel=event["channel"], text=HELP, blocks=help_blocks())

    @app.action(OPEN_FORM)
    def open_form(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        try:
            client.views_open(
                trigger_id=body["trigger_id"], view=request_view(services.wards.names())
            )
        except SlackApiError as error:  # an expired trigger, Slack itself failing
            log.warning("request form not opened from a DM: %s", error.response.get("error"))
            tell(
                client,
                user_id=body["user"]["id"],
                channel_id=None,
                text="The request form could not be opened; press the button again. "
                f"If the patient is deteriorating: {services.fallback_contact}",
            )


def help_blocks() -> list[dict[str, Any]]:
    button = {
        "type": "button",
        "action_id": OPEN_FORM,
        "text": plain("Raise a request"),
        "style": "primary",
    }
    return [section(HELP), {"type": "actions", "elements": [button]}]
