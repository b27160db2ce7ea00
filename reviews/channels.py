"""Whether each outreach channel takes the bot's messages, for /healthz and the log.

A channel whose latest message failed for good (the bot never invited to it, or removed) is a
problem until it takes the bot's messages again. Waiting for the next message to go to learn
that took hours on a quiet night, with /healthz paging someone about a problem already fixed,
so while it lasts the check asks the platform (a sender's `can_post`, which posts nothing).
The platform's yes is recorded in the database: every replica's next check clears it.

The cards refused meanwhile were reported to the digest channel, one by one, and that was all:
the team never saw requests still waiting for them. Once the channel takes the bot's messages
again (a message went, or its platform said so), each open request whose card never reached it
has its card posted there, with its state now: once for each refusal, across replicas (the
outbox's UNIQUE key names the refusal answered). A re-send refused in turn (the bot removed again
before it went) is a refusal of its own, answered once the channel takes the bot's messages
again; a card that may have arrived (its answers lost) is never posted again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

from reviews import messages
from reviews.context import Services
from reviews.model import format_reference
from reviews.outbox import DeliveryError, Sender
from storage.channels import CARD_AGAIN, Owed
from storage.database import UnitOfWork
from storage.tables import Outbox

log = logging.getLogger(__name__)

# How long a request's card waits to be posted again once two of its re-sends were refused
# (then doubling with each, up to AGAIN_PACE_MOST): see _due.
AGAIN_PACE = timedelta(minutes=1)
AGAIN_PACE_MOST = timedelta(hours=1)


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
    takes the bot's messages, the cards it never showed are posted (post_cards_owed). So they
    are at once on a channel nothing has gone to or failed in yet (OUTREACH_CHANNEL corrected):
    posting, rather than asking first, either shows them or records a refusal that names the
    channel in /healthz, where a "no" would have left it silent, nothing having failed there.
    DatabaseUnavailable if the database cannot be read or written."""
    for route in services.routes:
        if route.platform == "shell" or not route.outreach_channel:
            continue
        if _check(services, senders, route.platform, route.outreach_channel):
            post_cards_owed(services, route.platform, route.outreach_channel)


def _check(services: Services, senders: Mapping[str, Sender], platform: str, channel: str) -> bool:
    """Record in /healthz whether `channel` takes the bot's messages, and log a change; True
    when it is known to (its latest message went, or its platform has said so since), or
    nothing sent there has yet gone or failed."""
    with services.db.reading() as uow:
        latest = uow.outbox.last_outcome(platform, channel)
        answered = uow.channels.answered_failure(platform, channel)
    refused = _refusal(latest)
    # Nothing has gone or failed there yet (OUTREACH_CHANNEL just corrected): nothing says it
    # refuses the bot, so the cards owed are posted now, and a refusal of them is news as any.
    takes = latest is None or latest.state == "sent"
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
    """Post in `channel` the cards of open requests that never reached it (each refused for
    good while the bot was not in it, or sent to the channel set before): one for each refusal,
    across replicas, a re-send refused in turn answered by one more, paced once refused twice
    (_due). The ids of the requests whose cards were queued. DatabaseUnavailable if the
    database cannot be read or written."""
    now = services.clock.now()
    with services.db.reading() as uow:
        if not any(_due(owed, now) for owed in uow.channels.cards_owed(platform, channel)):
            return []  # nearly always: asked every 30 s, without a write transaction
    with services.db.unit_of_work() as uow:
        owed = [o for o in uow.channels.cards_owed(platform, channel, lock=True) if _due(o, now)]
        queued = [
            o.review.id or 0 for o in owed if _card_again(uow, services, o, platform, channel, now)
        ]
    if queued:
        log.warning(
            "the outreach %s channel %s is sent the cards it never showed of %s",
            platform,
            channel,
            ", ".join(format_reference(review_id) for review_id in queued),
        )
    return queued


def _due(owed: Owed, now: datetime) -> bool:
    """Whether `owed`'s card may be posted again now. A re-send refused in turn goes again as
    soon as the channel takes the bot's messages (the bot removed again before it went, then
    invited back); from the second refused, each waits AGAIN_PACE doubling after the last was
    queued, up to AGAIN_PACE_MOST: a platform that says the bot may post where it then refuses
    it (a Teams channel only its moderators may post in) would otherwise have every owed card
    posted, refused and reported to the managers at every check."""
    if owed.refused_again < 2 or owed.last_again_at is None:
        return True
    wait = min(AGAIN_PACE * 2 ** (owed.refused_again - 2), AGAIN_PACE_MOST)
    last = owed.last_again_at.replace(tzinfo=owed.last_again_at.tzinfo or UTC)
    return now >= last + wait


def _card_again(
    uow: UnitOfWork,
    services: Services,
    owed: Owed,
    platform: str,
    channel: str,
    now: datetime,
) -> bool:
    """Queue the card of `owed`'s request, as it stands now, for `channel`, and audit it;
    False if another replica has already, for the same refusal."""
    review = owed.review
    queued = uow.outbox.enqueue(
        key=f"{CARD_AGAIN}{review.id}:{platform}:{owed.failure_id}",
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
            answers=owed.failure_id,
        )
    return queued
