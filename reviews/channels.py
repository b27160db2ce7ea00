"""Whether each outreach channel takes the bot's messages, for /healthz and the log.

A channel whose latest message failed for good (the bot never invited to it, or removed) is a
problem until it takes the bot's messages again. Waiting for the next message to go to learn
that took hours on a quiet night, with /healthz paging someone about a problem already fixed,
so while it lasts the check asks the platform (a sender's `can_post`, which posts nothing).
The platform's yes is recorded in the database: every replica's next check clears it.

The cards refused meanwhile were reported to the digest channel, one by one, and that was all:
the team never saw requests still waiting for them. Once the channel takes the bot's messages
again (a message went, or its platform said so), each open request whose card never reached it
has its card posted there, with its state now; once, across replicas (the outbox's UNIQUE key).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from reviews import messages
from reviews.context import Services
from reviews.model import format_reference
from reviews.outbox import DeliveryError, Sender
from storage.channels import CARD_AGAIN
from storage.database import UnitOfWork
from storage.tables import Outbox, Review

log = logging.getLogger(__name__)


class ChannelAsker(Protocol):
    """A sender that can ask its platform whether the bot may post in a channel."""

    def can_post(self, channel: str, refused: str) -> bool | None:
        """Whether the bot may now post in `channel`, where the platform refused a message for
        good as `refused` (the failure as recorded), asked without posting anything; None when
        that refusal is not one the platform can be asked about (a message it could not take,
        not the bot it would not take). DeliveryError when the platform cannot be asked now."""
        ...


def check_channels(services: Services, senders: Mapping[str, Sender]) -> None:
    """Whether each outreach channel's latest message went or failed for good: a bot never
    invited to its channel (not_in_channel), or a channel archived, failed every card, and
    /healthz said nothing while the failure notices, with no digest channel, failed too. Read
    from the database, so the bot knows what its sender process or another replica found.
    While the latest failed, its platform is asked whether the bot may post there now; once it
    takes the bot's messages, the cards it never showed are posted (post_cards_owed).
    DatabaseUnavailable if the database cannot be read or written."""
    for route in services.routes:
        if route.platform == "shell" or not route.outreach_channel:
            continue
        if _check(services, senders, route.platform, route.outreach_channel):
            post_cards_owed(services, route.platform, route.outreach_channel)


def _check(services: Services, senders: Mapping[str, Sender], platform: str, channel: str) -> bool:
    """Record in /healthz whether `channel` takes the bot's messages, and log a change; True
    when it is known to (its latest message went, or its platform has said so since)."""
    with services.db.reading() as uow:
        latest = uow.outbox.last_outcome(platform, channel)
        answered = uow.channels.answered_failure(platform, channel)
    refused = _refusal(latest)
    takes = latest is not None and latest.state == "sent"
    if refused and latest is not None:
        # The platform said the bot may post there since this failure, or says so now.
        answer = (latest.id or 0) <= (answered or 0) or _may_post(services, senders, latest)
        if answer:
            refused, takes = None, True
        elif answer is None and latest.maybe_sent:
            # It may have arrived (its answers lost), then failed for a reason its platform
            # cannot be asked about (given up on those lost answers): nothing of the channel.
            refused = None
    _say(services, f"{platform} channel {channel}", refused)
    return takes


def _say(services: Services, where: str, refused: str | None) -> None:
    """/healthz names the channel while it refuses; the log says when that begins and ends."""
    if not services.health.channel(where, refused):
        return
    if refused:
        log.error(
            "the outreach %s does not take the bot's messages (%s): invite the bot to the "
            "channel, or correct its setting; direct messages still go",
            where,
            refused,
        )
    else:
        log.warning("the outreach %s takes the bot's messages again", where)


def _refusal(latest: Outbox | None) -> str | None:
    """Why the channel's latest message failed for good; None if it went (or none has)."""
    if latest is None or latest.state != "failed":
        return None
    return latest.last_error or "failed"


def _may_post(services: Services, senders: Mapping[str, Sender], failure: Outbox) -> bool | None:
    """Ask `failure`'s platform whether the bot may now post where it failed; its yes is
    recorded for every replica. False when it says no or cannot be asked now; None when that
    failure is not one it can be asked about (or it cannot be asked at all)."""
    ask = getattr(senders.get(failure.platform), "can_post", None)  # a ChannelAsker's
    if ask is None:
        return None
    try:
        answer = ask(failure.address, failure.last_error or "")
    except DeliveryError:
        return False  # asked again at the next check; the platform's own check reports outages
    if answer is not True:
        return answer
    with services.db.unit_of_work() as uow:
        uow.channels.verified(
            failure.platform, failure.address, failure_id=failure.id or 0, at=services.clock.now()
        )
    return True


def post_cards_owed(services: Services, platform: str, channel: str) -> list[int]:
    """Post in `channel`, once each, the cards of open requests that never reached it (each
    refused for good while the bot was not in it, or sent to the channel set before): the ids
    of the requests whose cards were queued. DatabaseUnavailable if the database cannot be
    read or written."""
    with services.db.reading() as uow:
        if not uow.channels.cards_owed(platform, channel):
            return []  # nearly always: asked every 30 s, without a write transaction
    now = services.clock.now()
    with services.db.unit_of_work() as uow:
        owed = uow.channels.cards_owed(platform, channel, lock=True)
        queued = [r.id or 0 for r in owed if _card_again(uow, services, r, platform, channel, now)]
    if queued:
        log.warning(
            "the outreach %s channel %s is sent the cards it never showed of %s",
            platform,
            channel,
            ", ".join(format_reference(review_id) for review_id in queued),
        )
    return queued


def _card_again(
    uow: UnitOfWork,
    services: Services,
    review: Review,
    platform: str,
    channel: str,
    now: datetime,
) -> bool:
    """Queue `review`'s card, as it stands now, for `channel`, and audit it; False if another
    replica has already."""
    queued = uow.outbox.enqueue(
        key=f"{CARD_AGAIN}{review.id}:{platform}",
        platform=platform,
        kind="card",
        address=channel,
        payload=messages.card(review, services.timezone).to_json(),
        at=now,
        review_id=review.id,
    )
    if queued:
        uow.events.record(
            review_id=review.id,
            kind="card_posted_again",
            at=now,
            platform=platform,
            channel=channel,
        )
    return queued
