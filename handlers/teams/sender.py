"""Delivering outbox items to Teams through the Bot Connector.

Message ids are Teams activity ids. A card goes to TEAMS_OUTREACH_CONVERSATION and is updated in
place; a thread line goes to the conversation "<channel>;messageid=<card activity id>" (posting
with only replyToId would start a new thread). A direct message goes to the person's 1:1 chat,
created from their stored conversation reference or their Entra object id when needed.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from handlers.teams import cards
from handlers.teams.connector import Connector
from handlers.teams.people import reference_for, save_personal_conversation
from reviews.context import Services
from reviews.outbox import DeliveryError, OutboundItem

log = logging.getLogger(__name__)
# The Bot Connector's refusals of a conversation whose team the bot is not in (403,
# BotNotInConversationRoster; BotDisabledByAdmin) or that it does not know (404): its roster,
# read since, says when it takes the bot there again. Not any other 403 (a channel only its
# moderators may post in): the roster would say yes while every post is refused, and /healthz
# would clear and fail again at each check.
NOT_IN_TEAM = (
    "Bot Connector refused (403: BotNotInConversationRoster)",
    "Bot Connector refused (403: BotDisabledByAdmin)",
    "Bot Connector refused (404:",
)
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class TeamsSender:
    """A reviews.outbox.Sender for platform "teams"."""

    # Teams cannot be asked whether a message arrived, and one sent again shows twice: a message
    # whose answers keep being lost is not resent for a day (reviews.outbox._given_up).
    resends_blind = True

    def __init__(
        self,
        *,
        connector: Connector,
        services: Services,
        service_url: str,
        tenant_id: str,
        outreach_conversation: str,
    ):
        self.connector = connector
        self.services = services
        self.service_url = service_url
        self.tenant_id = tenant_id
        self.outreach_conversation = outreach_conversation

    def deliver(self, item: OutboundItem) -> str | None:
        """Send `item`; DeliveryError (retry_after / transient / permanent) when Teams says no."""
        activity = _activity(item)
        if item.kind == "card_update" and item.card_id:
            self.connector.update_activity(self.service_url, item.address, item.card_id, activity)
            return item.card_id
        if item.kind == "thread" and item.card_id:
            thread = f"{item.address};messageid={item.card_id}"
            return self.connector.post_activity(self.service_url, thread, activity)
        if item.kind == "direct":
            return self._direct(item.address, activity)
        # card, a card_update or thread whose card never went out, and channel posts.
        return self.connector.post_activity(self.service_url, item.address, activity)

    def check(self) -> None:
        """A token from Entra, and the Bot Connector reached with it: DeliveryError
        (credentials, or transient) when either refuses the bot or cannot be reached."""
        self.connector.reach(self.service_url, self.outreach_conversation)

    def can_post(self, channel: str, refused: str) -> bool | None:
        """reviews.channels.ChannelAsker: after the connector refused a message to `channel`
        as `refused`, whether it now takes the bot there: one member of the conversation's
        roster read (posts nothing), which it refuses (403) to a bot not in the team. None
        for another refusal. DeliveryError when the connector cannot be asked now."""
        if not refused.startswith(NOT_IN_TEAM):
            return None
        try:
            self.connector.members_page(self.service_url, channel, None, page_size=1)
        except DeliveryError as error:
            if error.permanent:
                return False
            raise
        return True

    def _direct(self, user_id: str, activity: dict[str, Any]) -> str:
        reference = reference_for(self.services, user_id)
        service_url = str(reference.get("serviceUrl") or self.service_url)
        conversation = reference.get("conversationId")
        if not conversation:
            member = reference.get("userId") or (user_id if GUID.match(user_id) else None)
            tenant = reference.get("tenantId") or self.tenant_id
            if not member or not tenant:
                raise DeliveryError(
                    "this person has never talked to the bot in Teams and their rota entry has "
                    "no Entra object id, so no chat with them can be opened; ask them to open "
                    "rapidreview in Teams once",
                    permanent=True,
                )
            conversation = self.connector.create_personal_conversation(service_url, member, tenant)
            save_personal_conversation(self.services, user_id, conversation, service_url)
        return self.connector.post_activity(service_url, str(conversation), activity)


def _activity(item: OutboundItem) -> dict[str, Any]:
    """A message activity: its text, or, when there is more than text to show, the Adaptive Card
    alone (its first line the text) with the text as its summary. Never both text and a card:
    Teams splits such an activity into two messages and answers 202 naming neither, so the card
    could never be updated, and the answer would read as a proxy's (uncertain: sent again)."""
    message = item.message
    said = cards.inert(message.text)
    if message.review or message.actions or message.attachments:
        card = cards.attachment(cards.render(message))
        return {"type": "message", "attachments": [card], "summary": said}
    return {"type": "message", "text": said, "textFormat": "plain"}
