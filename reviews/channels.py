"""Whether each outreach channel takes the bot's messages, for /healthz and the log."""

from __future__ import annotations

import logging

from reviews.context import Services

log = logging.getLogger(__name__)


def check_channels(services: Services) -> None:
    """Whether each outreach channel's latest message went or failed for good: a bot never
    invited to its channel (not_in_channel), or a channel archived, failed every card, and
    /healthz said nothing while the failure notices, with no digest channel, failed too. Read
    from the database, so the bot knows what its sender process or another replica found.
    DatabaseUnavailable if it cannot be read."""
    channels = [(r.platform, r.outreach_channel) for r in services.routes if r.platform != "shell"]
    with services.db.reading() as uow:
        latest = {(p, c): uow.outbox.last_outcome(p, c) for p, c in channels if c}
    for (platform, channel), row in latest.items():
        # A message that may have arrived (its answers lost) says nothing of the channel.
        failed = row is not None and row.state == "failed" and not row.maybe_sent
        refused = (row.last_error or "failed") if row is not None and failed else None
        where = f"{platform} channel {channel}"
        if services.health.channel(where, refused) and refused:
            log.error(
                "the outreach %s does not take the bot's messages (%s): invite the bot to the "
                "channel, or correct its setting; direct messages still go",
                where,
                refused,
            )
