"""The rota's scheduled jobs: handover notices and cover-gap warnings (they send, so they sit in
the core beside the other senders; rotas/ only answers who holds what).

bot.py runs both every minute on every replica. Each notice is keyed (role, instant, person)
in the outbox, whose UNIQUE key refuses a second copy, so each goes out once however many
replicas run the job and however often.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from reviews import notify
from reviews.context import Services
from reviews.messages import OPEN_LISTED, Message, OpenList, local_time
from rotas.lookup import Holding, holdings, next_handover
from rotas.view import names
from storage.database import UnitOfWork

log = logging.getLogger(__name__)

# After downtime, a handover this recent is still announced; an older one is news to nobody.
HANDOVER_LATE_BY = timedelta(hours=1)
GAP_LOOKAHEAD = timedelta(hours=24)


def announce_handovers(services: Services) -> int:
    """Tell each new holder of a policy role what is open, and the outreach channel who holds
    it now. Returns how many handovers were announced by this call."""
    now = services.clock.now()
    announced = 0
    with services.db.unit_of_work() as uow:
        open_list = OpenList.of(
            uow.reviews.count_open(), uow.reviews.open_reviews(limit=OPEN_LISTED), services.timezone
        )
        for role in services.policy.roles():
            stretches = holdings(uow, role, now - HANDOVER_LATE_BY, now + timedelta(seconds=1))
            if len(stretches) < 2 or not stretches[-1].people:
                continue  # no change lately, or a gap (warned about ahead of time)
            announced += _announce(
                uow, services, role, stretches[-2], stretches[-1], open_list, now
            )
    return announced


def _announce(
    uow: UnitOfWork,
    services: Services,
    role: str,
    before: Holding,
    current: Holding,
    open_list: OpenList,
    now: datetime,
) -> int:
    arriving = [p for p in current.people if p.id not in before.staff_ids]
    if not arriving:
        return 0  # someone left an overlap; the holders who remain already knew
    change = next_handover(uow, role, now)
    until = f" until {local_time(change[0], services.timezone)}" if change else ""
    since = f" from {names(before.people)}" if before.people else ""
    key = f"handover:{role}:{current.start.isoformat()}"
    note = Message(text=f"Handover: {names(current.people)} now holds {role}{since}{until}.")
    queued = notify.to_outreach(
        uow, services.routes, key=f"{key}:note", kind="channel", message=note, at=now
    )
    for person in arriving:
        text = f"You now hold {role}{since}{until}.\n" + open_list.text()
        notify.to_person(
            uow,
            services.routes,
            person,
            key=f"{key}:{person.id}",
            message=Message(text=text),
            at=now,
        )
    return int(queued)


def warn_cover_gaps(services: Services) -> int:
    """Warn the digest channel, once per gap, of any stretch in the next 24 hours when a role
    the escalation policy names has nobody on call. Returns how many warnings were queued."""
    now = services.clock.now()
    warned = 0
    with services.db.unit_of_work() as uow:
        for role in services.policy.roles():
            for gap in holdings(uow, role, now, now + GAP_LOOKAHEAD):
                if not gap.people:
                    warned += _warn(uow, services, role, gap, now)
    return warned


def _warn(uow: UnitOfWork, services: Services, role: str, gap: Holding, now: datetime) -> int:
    # A gap under way began when someone last stopped holding the role (a shift or cover
    # ended, or was withdrawn part-way): a key that stays put while the look-ahead slides.
    began = gap.start if gap.start > now else uow.rota.holding_ended_before(role, now)
    tz = services.timezone
    start = f"from {local_time(began, tz)}" if began else "now (nobody has ever been on it)"
    at_least = "at least " if gap.end >= now + GAP_LOOKAHEAD else ""
    until = f"until {at_least}{local_time(gap.end, tz)}"
    text = (
        f"Rota gap: nobody holds {role} {start} {until}. Requests will skip that escalation "
        f"level. Record cover with /rapidreview rota cover {role} @person until TIME."
    )
    key = f"rota-gap:{role}:{began.isoformat() if began else 'never'}"
    queued = notify.to_digest_channel(
        uow, services.routes, key=key, message=Message(text=text), at=now
    )
    if queued:  # once per gap, as the channel is told (the channel is the alarm; this, a trail)
        log.info("%s", text)
    return int(queued)
