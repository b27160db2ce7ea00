"""The daily check-in prompt: at CHECKIN_TIME each ward with a channel is told how many
check-ins it has recorded since the last prompt, of how many beds.

Every replica runs prompt_job(); a digest_run row per (day, ward and platform) lets exactly one
of them post, in the same transaction as the message, as the digest does. In the local shell
every ward's prompt is shown, since the terminal stands in for every ward's channel.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from reviews.checkin_model import QUESTION
from reviews.context import Services
from reviews.digest import LATE_AFTER
from reviews.messages import Message
from reviews.notify import Route
from reviews.wards import Ward
from storage.database import UnitOfWork

log = logging.getLogger(__name__)

HOW_TO_RECORD = {
    "slack": "/rapidreview checkin",
    "teams": "checkin (to the bot)",
    "shell": "checkin",
}


def prompt_at(services: Services, day: date) -> datetime:
    """CHECKIN_TIME on local `day`, in UTC."""
    local = datetime.combine(day, services.checkin_time, tzinfo=services.timezone)
    return local.astimezone(UTC)


def ward_address(route: Route, ward: Ward) -> str:
    """Where `ward`'s prompt goes on the route's platform ("" for nowhere)."""
    if route.platform == "slack":
        return ward.slack_channel
    if route.platform == "teams":
        return ward.teams_conversation
    return route.outreach_channel if route.platform == "shell" else ""


def prompt_job(services: Services, *, send_late: bool = True) -> int:
    """Queue today's prompt to every ward channel not yet given it, once CHECKIN_TIME has
    passed (without `send_late`, only within LATE_AFTER of it: the shell's new trial has
    nothing to catch up on); how many were queued. DatabaseUnavailable if the database cannot
    be reached."""
    now = services.clock.now()
    today = now.astimezone(services.timezone).date()
    since = prompt_at(services, today)
    if now < since or (not send_late and now - since > LATE_AFTER):
        return 0
    wanted = [
        (ward, route, address)
        for ward in services.wards
        for route in services.routes
        if (address := ward_address(route, ward))
    ]
    if not wanted:
        return 0
    queued = 0
    with services.db.unit_of_work() as uow:
        claimed = uow.digest.runs.claimed(today)
        for ward, route, address in wanted:
            destination = f"checkin:{ward.code}:{route.platform}"
            if destination in claimed:
                continue
            if uow.digest.runs.claim(day=today, destination=destination, at=now, late=False):
                message = prompt(uow, services, ward, route.platform, today, now)
                uow.outbox.enqueue(
                    key=f"checkin-prompt:{today.isoformat()}:{destination}",
                    platform=route.platform,
                    kind="channel",
                    address=address,
                    payload=message.to_json(),
                    at=now,
                )
                queued += 1
    if queued:
        log.info("check-in prompts for %s queued to %s ward channels", today, queued)
    return queued


def prompt(
    uow: UnitOfWork, services: Services, ward: Ward, platform: str, day: date, now: datetime
) -> Message:
    """The prompt's words: the count since yesterday's prompt, of the ward's beds."""
    since = prompt_at(services, day - timedelta(days=1))
    checkins, beds = uow.checkins.count_since(ward.name, since, now)
    of_beds = f" ({beds} of {ward.beds} beds)" if ward.beds else ""
    return Message(
        text=f"Daily check-in, {ward.name}: {checkins} check-in{'s' * (checkins != 1)} recorded "
        f"since {services.checkin_time:%H:%M} yesterday{of_beds}. Ask each patient, or their "
        f'family, "{QUESTION}" and record it with {HOW_TO_RECORD.get(platform, "checkin")}.'
    )
