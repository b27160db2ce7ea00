"""Delivering outbox items to Slack, and finding people's Slack ids by email.

Slack's answers map onto the outbox's retry rules: 429 -> retry after Slack's Retry-After;
5xx and network failures -> retry with backoff; a refused token (invalid_auth, token_revoked
...) -> held until the token works again, since every message fails alike until IT fixes it;
any other API error (channel_not_found, not_in_channel ...) -> permanent, because sending it
again cannot help.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from handlers.slack.blocks import escape, render
from reviews.messages import Message
from reviews.outbox import DeliveryError, OutboundItem

log = logging.getLogger(__name__)
T = TypeVar("T")

# Slack's answers that mean the bot's token itself is refused, not this one message.
CREDENTIAL_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)


class SlackSender:
    """A reviews.outbox.Sender for platform "slack". Message ids are "channel:ts"."""

    def __init__(self, client: WebClient):
        self.client = client

    def deliver(self, item: OutboundItem) -> str | None:
        """Send `item`; DeliveryError (retry_after / transient / permanent / credentials)
        when Slack says no."""
        return _answered(lambda: self._send(item))

    def check(self) -> None:
        """auth.test: DeliveryError (credentials, or transient) when Slack will not take us."""
        _answered(self.client.auth_test)

    def _send(self, item: OutboundItem) -> str | None:
        message = item.message
        if item.kind == "card_update" and item.card_id:
            channel, ts = split_message_id(item.card_id, item.address)
            self.client.chat_update(channel=channel, ts=ts, **_content(message))
            return item.card_id
        if item.kind == "thread" and item.card_id:
            channel, ts = split_message_id(item.card_id, item.address)
            response = self.client.chat_postMessage(
                channel=channel, thread_ts=ts, **_content(message)
            )
            return f"{response['channel']}:{response['ts']}"
        # card, a card_update or thread whose card never went out, direct (a user id opens the
        # app's DM with that person) and channel posts.
        if message.attachments:
            # One call posts the files with their caption, so a retry cannot repeat the text.
            self.client.files_upload_v2(
                channel=item.address,
                initial_comment=escape(message.text),
                request_file_info=False,  # one call fewer, so the send ends inside its lease
                file_uploads=[
                    {"content": a.content, "filename": a.filename, "title": a.title}
                    for a in message.attachments
                ],
            )
            return None
        response = self.client.chat_postMessage(channel=item.address, **_content(message))
        return f"{response['channel']}:{response['ts']}"


def _answered(call: Callable[[], T]) -> T:
    try:
        return call()
    except SlackApiError as error:
        raise _delivery_error(error) from error
    except (SlackClientError, OSError) as error:
        # URLError, timeouts, refused connections: the network, not the message.
        raise DeliveryError(f"network: {type(error).__name__}") from error


def _content(message: Message) -> dict[str, Any]:
    # The top-level text is what phones show in notifications: as inert as the blocks.
    return {"text": escape(message.text), "blocks": render(message), "unfurl_links": False}


def split_message_id(message_id: str, default_channel: str) -> tuple[str, str]:
    """("C123", "1700.1") from "C123:1700.1"; a bare ts belongs to `default_channel`."""
    channel, _, ts = message_id.rpartition(":")
    return (channel or default_channel), ts


def _delivery_error(error: SlackApiError) -> DeliveryError:
    response = error.response
    status = response.status_code
    reason = str(response.get("error", "") if isinstance(response.data, dict) else "") or str(
        status
    )
    if status == 429:
        retry_after = response.headers.get("Retry-After") or response.headers.get("retry-after")
        return DeliveryError(
            f"rate limited ({reason})", retry_after=float(retry_after) if retry_after else None
        )
    if status >= 500:
        return DeliveryError(f"Slack {status} ({reason})")
    if reason in CREDENTIAL_ERRORS or status == 401:
        return DeliveryError(f"Slack refused the token: {reason}", credentials=True)
    return DeliveryError(f"Slack refused: {reason}", permanent=True)


def lookup_slack_id(client: WebClient) -> Callable[[str], str | None]:
    """email -> Slack user id via users.lookupByEmail; None when Slack does not know the email.

    Other failures (network, auth) raise SlackClientError: a rota import should stop and say so
    rather than quietly store people without their Slack ids.
    """

    def lookup(email: str) -> str | None:
        try:
            response = client.users_lookupByEmail(email=email)
        except SlackApiError as error:
            if error.response.get("error") == "users_not_found":
                return None
            raise
        user = response.get("user") or {}
        return user.get("id")

    return lookup
