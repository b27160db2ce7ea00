"""Who is acting (a Slack user as a reviews Actor) and telling one person something privately."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from handlers.slack.blocks import escape
from reviews.context import Actor, Services, known_as

log = logging.getLogger(__name__)


def actor(services: Services, user: dict[str, Any]) -> Actor:
    """The person behind a payload's `user`, named as the rota's directory knows them.

    DatabaseUnavailable escapes: the caller is about to need the database anyway.
    """
    with services.db.reading() as uow:
        return known_as(uow, slack_user(user))


def slack_user(user: dict[str, Any]) -> Actor:
    """The person behind a payload's `user` as Slack names them. Raising and changing a request
    name them as the rota's directory knows them, in their own transaction (reviews.service)."""
    user_id = str(user.get("id") or user.get("user_id") or "")
    name = str(user.get("name") or user.get("username") or user.get("user_name") or user_id)
    return Actor(platform="slack", user_id=user_id, name=name)


def with_email(client: WebClient, person: Actor) -> Actor:
    """`person` with their Slack profile email, for MANAGERS / ROTA_ADMINS lists of emails."""
    if person.email:
        return person
    try:
        profile = client.users_info(user=person.user_id)["user"].get("profile", {})
    except (SlackClientError, OSError) as error:
        log.warning("users.info for %s failed: %s", person.user_id, type(error).__name__)
        return person
    return Actor(
        platform=person.platform,
        user_id=person.user_id,
        name=person.name,
        email=str(profile.get("email") or ""),
    )


def tell(client: WebClient, *, user_id: str, channel_id: str | None, text: str) -> None:
    """Say `text` to one person only: an ephemeral message in a channel, else a DM.

    A channel the bot is not in refuses ephemeral messages; the DM always reaches them. When
    Slack cannot be reached at all, a warning says so: this runs after the ack, where an error
    raised would be lost without a word.
    """
    if channel_id and not channel_id.startswith("D"):
        try:
            client.chat_postEphemeral(channel=channel_id, user=user_id, text=escape(text))
            return
        except SlackApiError as error:
            log.info(
                "ephemeral in %s refused (%s); sending a DM",
                channel_id,
                error.response.get("error"),
            )
        except (SlackClientError, OSError) as error:
            log.warning("could not tell %s privately: %s", user_id, type(error).__name__)
            return
    try:
        client.chat_postMessage(channel=user_id, text=escape(text))
    except (SlackClientError, OSError) as error:
        log.warning("could not tell %s privately: %s", user_id, type(error).__name__)
