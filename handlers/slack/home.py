"""App Home: who holds each role now, the open requests, and my own recent requests."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from handlers.one_at_a_time import Waited, in_time
from handlers.slack.blocks import Block, escape, plain, section, sections
from handlers.slack.commands import ANSWER_WAIT, open_requests
from reviews.context import Services
from reviews.messages import local_time
from reviews.model import format_reference
from settings import Settings
from storage.database import DatabaseUnavailable

log = logging.getLogger(__name__)

ROTA_CUT = "_…cut here: `/rapidreview rota` shows every role._"


def register(app: App, services: Services, settings: Settings) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        user_id = str(event["user"])
        try:
            # As a command's answer: on a thread of its own, so a hung database holds none of
            # bolt's listener threads (everyone opening the Home tab would take one each).
            blocks = in_time(lambda: home_blocks(services, user_id), ANSWER_WAIT, name="home")
        except (DatabaseUnavailable, Waited) as error:
            log.warning("App Home: database unavailable (%s)", type(error).__name__)
            blocks = [
                section(
                    "The bot cannot reach its database just now. "
                    + escape(services.fallback_contact)
                )
            ]
        client.views_publish(user_id=user_id, view={"type": "home", "blocks": blocks})


def home_blocks(services: Services, user_id: str) -> list[Block]:
    """The Home tab for `user_id`. DatabaseUnavailable if the database does not answer."""
    from rotas.view import rota_lines

    now = services.clock.now()
    rota = rota_lines(services=services, at=now)
    with services.db.reading() as uow:
        mine = uow.reviews.raised_by("slack", user_id, limit=5)
    mine_lines = [
        f"• {format_reference(r.id or 0)} · {escape(r.ward)} · {r.state} · raised "
        f"{local_time(r.raised_at, services.timezone)}"
        for r in mine
    ]
    return [
        {"type": "header", "text": plain("Rapid review")},
        section(
            "Type `/rapidreview` anywhere to ask the outreach team to review a patient, and "
            "`/rapidreview checkin` to record a patient's daily check-in. "
            "In an emergency call 2222."
        ),
        {"type": "header", "text": plain("On call now")},
        # A trust of many roles runs past one section's 3,000 characters: whole lines, in as
        # many as it takes (a view holds 100 blocks), never a holder's name cut in half.
        *sections(
            "\n".join(escape(line) for line in rota) or "Nobody is on the rota.", 40, ROTA_CUT
        ),
        {"type": "header", "text": plain("Open requests")},
        section(open_requests(services)),
        {"type": "header", "text": plain("Your recent requests")},
        section("\n".join(mine_lines) or "You have not raised any requests."),
    ]
