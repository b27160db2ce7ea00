"""Delivering outbox items to Slack, and finding people's Slack ids by email.

Slack's answers map onto the outbox's retry rules: 429 -> retry after Slack's Retry-After;
5xx, Slack's passing errors (internal_error ...), an answer that is not Slack's JSON (a proxy's
error page), a 200 naming neither "ok" nor an error ({}) and network failures -> retry with
backoff; a refused token (invalid_auth, token_revoked ...) -> held until the token works again,
since every message fails alike until IT fixes it; any other API error (channel_not_found,
not_in_channel ...) -> permanent, because sending it again cannot help.

Posted only once, though an answer is lost: each message the outbox posts carries metadata
naming its outbox rows (reviews.outbox.outbox_tag). When an earlier attempt may have arrived
unseen (its answer lost to the network or a 5xx, or its drainer killed mid-send), the outbox asks
`arrived` first: it reads the conversation's newest messages (conversations.history), or the
card's thread (conversations.replies), and a message this bot posted with a row's tag is taken
as that row's. A 429 on the look waits as Slack asks; if Slack will not show them otherwise (a
missing history scope, Slack down), the message is sent again: twice rather than never.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from handlers.slack.blocks import escape, render
from reviews.messages import Message
from reviews.outbox import DeliveryError, OutboundItem, unseen

log = logging.getLogger(__name__)
T = TypeVar("T")

# Slack's answers that mean the bot's token itself is refused, not this one message.
CREDENTIAL_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
# Slack's answers (with HTTP 200, as Slack gives its errors) that say Slack failed this once, not
# that it refuses the message: Slack's documentation says of the first two that some of it may
# have taken effect, so each is sent again only after a look for it.
PASSING_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# slack_sdk's `error` for an answer that is no JSON at all: not Slack's (a corporate proxy's error
# page, a captive portal), whatever its status, and no word from Slack on the message.
NOT_JSON = "Received a response in a non-JSON format: "
# Slack's refusals of a message to a channel the bot is not a member of (never invited, or
# removed; a private channel it is not in is "not found") or that is archived: conversations.info
# says when it may post there again.
NOT_IN_CHANNEL = frozenset({"not_in_channel", "channel_not_found", "is_archived"})
# The scopes conversations.info needs: public channels, private channels.
CHANNEL_SCOPES = "channels:read, groups:read"
# The metadata event type tagging the outbox's messages with their rows' ids.
# manifest.yml's bot scopes, each with what the bot cannot do without it (said at start when
# the token lacks one: an app upgraded by pasting the manifest but never reinstalled).
SCOPES = {
    "chat:write": "nothing can be posted",
    "commands": "/rapidreview cannot be used",
    "users:read": "rota members cannot be found by name",
    "users:read.email": "rota members cannot be found by email",
    "files:write": "the digest goes without its chart",
    "im:write": "no direct message reaches the bleep-holder",
    "im:history": "the Messages tab is silent, and a ping whose answer was lost may go twice",
    "channels:history": "a card whose answer was lost may be posted twice",
    "groups:history": "the same in a private channel",
    "channels:read": "an outreach channel that refused the bot is a /healthz problem until a "
    "message to it goes, even once the bot is invited",
    "groups:read": "the same for a private channel",
}
TAGGED = "rapidreview_outbox"
# A conversation's newest messages read to find an earlier attempt: Slack takes about one
# post a second in one conversation, so a retry minutes later still finds it among these. A
# thread is read oldest first, so up to LOOK_PAGES pages of it.
LOOK_BACK = 200
LOOK_PAGES = 5
# Seconds a look may take: it only saves a duplicate, so it must not hold up the send long.
LOOK_TIMEOUT = 5


class SlackSender:
    """A reviews.outbox.Sender for platform "slack". Message ids are "channel:ts"."""

    def __init__(self, client: WebClient):
        # The outbox retries itself, looking first for a message whose answer was lost;
        # slack_sdk's own retry after a dropped connection would post it again unseen.
        self.client = copy.copy(client)
        self.client.retry_handlers = []
        self.looker = copy.copy(self.client)
        self.looker.timeout = min(LOOK_TIMEOUT, self.client.timeout)
        self._bot_id: str | None = None  # auth.test's, read when first needed
        self._told_scopes = False  # the log says once that conversations.info is not allowed
        self._told_missing = False  # the first check says which scopes the app lacks

    def deliver(self, item: OutboundItem) -> str | None:
        """Send `item`; DeliveryError (retry_after / transient / permanent / credentials)
        when Slack says no."""
        return _answered(lambda: self._send(item), late=self.client.timeout)

    def check(self) -> None:
        """auth.test: DeliveryError (credentials, or transient) when Slack will not take us.
        The first answer's scopes are compared with manifest.yml's, and any it lacks said once
        (an app upgraded without reinstalling it), with what each costs."""
        answer = _answered(self.client.auth_test)
        if self._told_missing:
            return
        self._told_missing = True
        said = [v for k, v in answer.headers.items() if k.lower() == "x-oauth-scopes"]
        if not said:
            return  # Slack did not say
        granted = {scope.strip() for scope in str(said[0]).split(",")}
        missing = [scope for scope in SCOPES if scope not in granted]
        if missing:
            log.warning(
                "the Slack app lacks %s of manifest.yml's scopes, so: %s. Paste manifest.yml "
                "into the app's settings and reinstall it (README, Upgrading an app)",
                len(missing),
                "; ".join(f"without {scope}, {SCOPES[scope]}" for scope in missing),
            )

    def can_post(self, channel: str, refused: str) -> bool | None:
        """reviews.channels.ChannelAsker: after Slack refused a message to `channel` as
        `refused`, whether the bot is now a member of it and it is not archived
        (conversations.info: reads no message, posts nothing). None for a refusal membership
        does not explain, or when the app was installed without the scopes to ask (said once
        in the log). DeliveryError when Slack cannot be asked now."""
        if refused.removeprefix("Slack refused: ") not in NOT_IN_CHANNEL:
            return None
        try:
            found = self.looker.conversations_info(channel=channel).get("channel") or {}
        except SlackApiError as error:
            code = error.response.get("error") if isinstance(error.response.data, dict) else ""
            if code == "channel_not_found":
                return False  # none, or a private channel the bot is not in
            if code == "missing_scope":
                self._tell_scopes()
                return None
            raise _delivery_error(error) from error
        except (SlackClientError, OSError) as error:
            raise DeliveryError(f"network: {type(error).__name__}") from error
        return bool(found.get("is_member")) and not found.get("is_archived")

    def _tell_scopes(self) -> None:
        if not self._told_scopes:
            self._told_scopes = True
            log.warning(
                "Slack: the app may not ask whether it is in a channel (missing_scope: %s); "
                "reinstall it with manifest.yml's scopes, or an outreach channel that refused "
                "it is seen to take its messages again only when one goes",
                CHANNEL_SCOPES,
            )

    def _send(self, item: OutboundItem) -> str | None:
        message = item.message
        if item.kind == "card_update" and item.card_id:
            channel, ts = split_message_id(item.card_id, item.address)
            self.client.chat_update(channel=channel, ts=ts, **_content(message))
            return item.card_id
        if item.kind == "thread" and item.card_id:
            channel, ts = split_message_id(item.card_id, item.address)
            response = self.client.chat_postMessage(
                channel=channel, thread_ts=ts, **_content(message), **_tag(item)
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
        response = self.client.chat_postMessage(
            channel=item.address, **_content(message), **_tag(item)
        )
        return f"{response['channel']}:{response['ts']}"

    def arrived(self, items: Sequence[OutboundItem]) -> dict[str, str]:
        """reviews.outbox.Looker: {tag: message id} for the items' tags found on a message this
        bot already posted, reading each conversation (or card thread) once."""
        places: dict[tuple[str, str], set[str]] = {}  # (address, thread ts) -> tags
        for item in items:
            if (item.kind == "card_update" and item.card_id) or item.message.attachments:
                continue  # an update cannot double; a file carries no metadata
            place = (item.address, "")
            if item.kind == "thread" and item.card_id:
                place = split_message_id(item.card_id, item.address)
            places.setdefault(place, set()).update(item.tags)
        found: dict[str, str] = {}
        for (address, thread), tags in places.items():
            found.update(self._find(address, thread, tags))
        return found

    def _find(self, address: str, thread: str, tags: set[str]) -> dict[str, str]:
        try:
            bot = self._bot()
            channel = address
            if address[:1] in ("U", "W"):  # a person: their conversation with the bot
                channel = self.looker.conversations_open(users=address)["channel"]["id"]
            messages = self._read(channel, thread)
        except SlackApiError as error:
            if error.response.status_code == 429:
                raise _delivery_error(error) from error  # wait as asked, then look
            return unseen(tags, _delivery_error(error))
        except (SlackClientError, OSError) as error:
            return unseen(tags, repr(error))
        found = {}
        for message in messages:
            metadata = message.get("metadata") or {}
            # Ours only: another app could post metadata of our event type, and a ping taken for
            # sent that never was is the harm this guards against most.
            if metadata.get("event_type") != TAGGED or message.get("bot_id") != bot:
                continue
            tagged = str((metadata.get("event_payload") or {}).get("outbox", "")).split(",")
            for tag in tags.intersection(tagged):
                found[tag] = f"{channel}:{message['ts']}"
        return found

    def _read(self, channel: str, thread: str) -> list[dict[str, Any]]:
        """The conversation's newest LOOK_BACK messages, or the thread (oldest first)."""
        if not thread:
            response = self.looker.conversations_history(
                channel=channel, include_all_metadata=True, limit=LOOK_BACK
            )
            return list(response.get("messages") or [])
        messages: list[dict[str, Any]] = []
        cursor = None
        for _ in range(LOOK_PAGES):
            response = self.looker.conversations_replies(
                channel=channel,
                ts=thread,
                include_all_metadata=True,
                limit=LOOK_BACK,
                cursor=cursor,
            )
            messages += response.get("messages") or []
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return messages

    def _bot(self) -> str:
        """This bot's id (auth.test), as Slack marks the messages it posts."""
        if not self._bot_id:
            self._bot_id = str(self.looker.auth_test().get("bot_id") or "") or None
        return self._bot_id or "(unknown)"


def _answered(call: Callable[[], T], *, late: float | None = None) -> T:
    """`call`'s answer, or DeliveryError. A call we stopped waiting for after `late` seconds
    is tried again no sooner than that: Slack may still be posting it, and the look before the
    next attempt must find it."""
    try:
        return call()
    except SlackApiError as error:
        raise _delivery_error(error) from error
    except (SlackClientError, OSError) as error:
        # URLError, timeouts, refused connections: the network, not the message. Slack may
        # have taken it all the same before the answer was lost.
        wait = late if isinstance(error, TimeoutError) else None
        raise DeliveryError(
            f"network: {type(error).__name__}", uncertain=True, retry_after=wait
        ) from error


def _tag(item: OutboundItem) -> dict[str, Any]:
    """Metadata naming the outbox rows a message stands for (nothing else: no patient data)."""
    if not item.tags:
        return {}
    outbox = ",".join(item.tags)
    return {"metadata": {"event_type": TAGGED, "event_payload": {"outbox": outbox}}}


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
    code = str(response.get("error", "") if isinstance(response.data, dict) else "")
    reason = code or str(status)
    if status == 429:
        retry_after = response.headers.get("Retry-After") or response.headers.get("retry-after")
        return DeliveryError(
            f"rate limited ({reason})",
            retry_after=float(retry_after) if retry_after else None,
            throttled=True,
        )
    if status >= 500 or reason in PASSING_ERRORS:
        return DeliveryError(f"Slack {status} ({reason})", uncertain=True)
    if reason.startswith(NOT_JSON):
        page = reason.removeprefix(NOT_JSON)
        return DeliveryError(f"an answer that is not Slack's, {status}: {page}", uncertain=True)
    if status == 200 and not code:
        # Slack names the error of every refusal: a 200 naming none ({}, no "ok") is no word
        # on the message, which may have been posted.
        return DeliveryError("a 200 from Slack naming no error and no ok", uncertain=True)
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
