"""The card's buttons, in a channel or a DM: each button's value is the review id.

Acknowledge and Attending change state at once; Record outcome and Cancel open a form. A
refusal (not on the rota, already closed) is told to the presser only. Pressing twice, or Slack
retrying the click, changes nothing the second time: the services are idempotent.
"""

from __future__ import annotations

import logging
import re
from functools import partial
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.one_at_a_time import Waited, in_time
from handlers.slack.after_ack import AfterAck
from handlers.slack.blocks import ACTION_PREFIX
from handlers.slack.forms import cancel_view, outcome_view
from handlers.slack.people import slack_user, tell
from reviews import service
from reviews.context import Services
from reviews.model import Action
from settings import Settings
from storage.database import DatabaseUnavailable

log = logging.getLogger(__name__)


# Acknowledge and Attending change state after the ack, behind the acks still to be given
# (handlers/slack/after_ack.py). Record outcome and Cancel open a form at once instead (Slack's
# trigger for it expires after 3 s).
CHANGED_AFTER_ACK = (Action.ACKNOWLEDGE, Action.ATTEND)
# Seconds Record outcome or Cancel waits for the database before saying it cannot reach it:
# inside the 3 s Slack's trigger for the form lasts.
FORM_WAIT = 2.5


def register(app: App, services: Services, settings: Settings, after_ack: AfterAck) -> None:
    @app.action(re.compile(f"^{ACTION_PREFIX}"))
    def press(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        ack()
        if action["action_id"].removeprefix(ACTION_PREFIX) in CHANGED_AFTER_ACK:
            after_ack.submit(partial(_handle, services, client, body, action))
            return
        try:
            # On a thread of its own: one waiting on a database that hangs (takes connections,
            # never answers) held one of bolt's few listener threads for as long as it hung.
            in_time(partial(_handle, services, client, body, action), FORM_WAIT, name="press")
        except Waited:
            log.warning("button on Slack: the database did not answer in %.1f s", FORM_WAIT)
            text = f"The bot cannot reach its database just now. {services.fallback_contact}"
            tell(client, user_id=body["user"]["id"], channel_id=_pressed_in(body), text=text)


def _pressed_in(body: dict[str, Any]) -> str | None:
    """The conversation the button was pressed in (a channel, or a DM's container)."""
    channel: str | None = (body.get("channel") or {}).get("id") or (
        body.get("container") or {}
    ).get("channel_id")
    return channel


def _handle(
    services: Services, client: WebClient, body: dict[str, Any], action: dict[str, Any]
) -> None:
    """Do what the button says, and tell the presser privately of anything but a change."""
    user_id = body["user"]["id"]
    channel = _pressed_in(body)
    try:
        pressed = Action(action["action_id"].removeprefix(ACTION_PREFIX))
        review_id = int(action["value"])
        note = _press(services, client, body, pressed, review_id)
    except service.ServiceError as refused:
        note = str(refused)
    except DatabaseUnavailable as error:
        log.warning("button on Slack not recorded: %s", error)
        note = (
            f"Nothing was recorded: the bot cannot reach its database. {services.fallback_contact}"
        )
    except ValueError:
        note = "That button is no longer recognised; use the latest card."
    except SlackApiError as error:  # the outcome or cancel form could not be opened
        log.warning("form not opened: %s", error.response.get("error"))
        note = "The form could not be opened; press the button again."
    except Exception as error:  # noqa: BLE001 - off bolt's threads, nobody else would say
        log.error("button on Slack failed: %s", type(error).__name__)  # no traceback: values
        note = f"Nothing was recorded: something went wrong. {services.fallback_contact}"
    if note:
        tell(client, user_id=user_id, channel_id=channel, text=note)


def _press(
    services: Services,
    client: WebClient,
    body: dict[str, Any],
    pressed: Action,
    review_id: int,
) -> str | None:
    """Do what the button says; what to tell the presser privately, if anything."""
    by = slack_user(body["user"])  # named from the rota by the change, in its transaction
    if pressed in (Action.ACKNOWLEDGE, Action.ATTEND):
        change = service.acknowledge if pressed is Action.ACKNOWLEDGE else service.attend
        result = change(services=services, review_id=review_id, by=by)
        # A change shows on the card; a repeat changes nothing, so say why nothing moved.
        return None if result.changed else result.note
    reference = service.check_may(services=services, review_id=review_id, by=by, action=pressed)
    form = outcome_view if pressed is Action.RECORD_OUTCOME else cancel_view
    client.views_open(trigger_id=body["trigger_id"], view=form(review_id, reference))
    return None
