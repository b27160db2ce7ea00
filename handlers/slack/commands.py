"""`/rapidreview` and its sub-commands. Every listener acks first: Slack allows 3 seconds."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from handlers.one_at_a_time import Waited, in_time
from handlers.slack.blocks import escape
from handlers.slack.form_relay import FormAsked, FormRelay
from handlers.slack.people import actor, with_email
from reviews import service
from reviews.context import Services
from reviews.service import ServiceError
from settings import Settings
from storage.database import DatabaseUnavailable

log = logging.getLogger(__name__)

HELP = """*Rapid review* (Martha's Rule): ask the critical care outreach team to review a patient.
• `/rapidreview` - raise a request (opens the form)
• `/rapidreview checkin` - record a patient's daily check-in (how they feel today)
• `/rapidreview open` - requests not yet closed, oldest first
• `/rapidreview rota` - who holds each role now, and who is next
• `/rapidreview rota cover ROLE @person [until TIME]` - record a swap or cover
• `/rapidreview digest` - today's digest (managers)
• `/rapidreview help` - this help
In an emergency call 2222."""

# Seconds an answer waits for the database before saying it cannot reach it. Bolt runs a
# listener on one of a few threads: one waiting on a database that hangs (takes connections,
# never answers) waited for ever, and ten such took every thread, so a nurse's request form
# then got no answer at all. Long enough for a manager's digest on a busy machine.
ANSWER_WAIT = 15.0
COVER = re.compile(
    r"rota\s+cover\s+(?P<role>\S+)\s+<@(?P<user>[UW][A-Z0-9]+)(?:\|[^>]*)?>"
    r"(?:\s+until\s+(?P<until>.+))?",
    re.IGNORECASE,
)
COVER_HELP = (
    "Name the role and the person with an @mention, e.g. "
    "`/rapidreview rota cover outreach @Sam Patel until 20:00`."
)


def register(app: App, services: Services, settings: Settings, relay: FormRelay) -> None:
    """The slash command; the core decides who may see the digest (MANAGERS). Its forms are
    opened through `relay` (here, or by the sender process)."""

    @app.command("/rapidreview")
    def rapidreview(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        text = " ".join(str(command.get("text") or "").split())
        word = text.split(" ", 1)[0].lower()
        if word in ("", "checkin"):
            ack()
            asked = FormAsked.from_command("checkin" if word else "request", command)
            relay.open(asked, lambda said: tell(respond, said))
            return
        if word not in ("open", "rota", "digest"):
            ack(text=HELP)
            return
        ack()
        user = {"id": command.get("user_id"), "name": command.get("user_name")}
        try:
            reply = in_time(
                lambda: _answer(services, client, text, user), ANSWER_WAIT, name="command"
            )
        except ServiceError as error:
            reply = escape(str(error))  # it may repeat what was typed
        except (DatabaseUnavailable, Waited):
            log.warning("/rapidreview %s: database unavailable", word)
            reply = f"The bot cannot reach its database just now. {services.fallback_contact}"
        except Exception as error:  # noqa: BLE001 - whoever asked still hears, and where to turn
            log.error("/rapidreview %s failed: %s", word, type(error).__name__)
            reply = f"That could not be done just now. {services.fallback_contact}"
        tell(respond, reply)


def tell(respond: Respond, text: str) -> None:
    """An ephemeral answer through the command's response_url. Slack unreachable is one
    line in the log (the scheduler reports the outage), not bolt's traceback for each."""
    try:
        respond(text=text, response_type="ephemeral")
    except Exception as error:  # noqa: BLE001 - the person's own Slack is not answering either
        log.warning("could not answer a /rapidreview command: %s", type(error).__name__)


def _answer(services: Services, client: WebClient, text: str, user: dict[str, Any]) -> str:
    word = text.split(" ", 1)[0].lower()
    if word == "open":
        return open_requests(services)
    if word == "digest":
        from reviews.digest import digest_for

        return escape(digest_for(services=services, by=with_email(client, actor(services, user))))
    if text.lower() == "rota":
        from rotas.view import rota_lines

        return "\n".join(
            escape(line) for line in rota_lines(services=services, at=services.clock.now())
        )
    if text.lower().split()[:2] != ["rota", "cover"]:
        return HELP  # anything else gets the help text (CONTRACT.md)
    match = COVER.fullmatch(text)
    if not match:
        return COVER_HELP
    from reviews.cover import record_cover

    covered = record_cover(
        services=services,
        role=match["role"],
        covering_platform="slack",
        covering_user_id=match["user"],
        by=with_email(client, actor(services, user)),
        until_text=match["until"],
    )
    return escape(covered)


def open_requests(services: Services) -> str:
    """Requests not yet closed, oldest first, one line each (no identifiers)."""
    return service.open_requests(services=services).text(bold="*", escape=escape)
