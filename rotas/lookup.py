"""Who holds a role at an instant: cover first, then the rota's shifts, else nobody."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.database import UnitOfWork
from storage.tables import Staff


def who_holds(uow: UnitOfWork, role: str, at: datetime) -> list[Staff]:
    """Everyone holding `role` at `at`; an empty list when nobody is on. Never raises for gaps.

    Cover (an override) wins: while any cover spans `at`, the shift holders are off the hook.
    Two overlapping shifts both hold the role, and both are told.
    """
    covering, on_shift = uow.rota.holding_at(role, at)
    return list({person.id: person for person in covering or on_shift}.values())


# A responder is on shift or cover now, or within this of it: the outgoing nurse finishing a
# request over handover and the incoming one arriving early may both act; someone whose
# shifts were last month or are next week may not.
HANDOVER_MARGIN = timedelta(hours=2)


def is_responder(uow: UnitOfWork, platform: str, user_id: str, at: datetime) -> bool:
    """Whether the person has a shift or cover within HANDOVER_MARGIN of `at`."""
    person = uow.rota.staff_by_platform_id(platform, user_id)
    if person is None or person.id is None:
        return False
    return uow.rota.on_duty_between(person.id, at - HANDOVER_MARGIN, at + HANDOVER_MARGIN)


# How far ahead next_handover looks for a change before saying there is none.
HANDOVER_HORIZON = timedelta(days=14)


@dataclass(frozen=True)
class Holding:
    """A stretch of time in which the same people hold a role (nobody, when `people` is empty)."""

    start: datetime
    end: datetime
    people: list[Staff]

    @property
    def staff_ids(self) -> frozenset[int | None]:
        return frozenset(person.id for person in self.people)


def holdings(uow: UnitOfWork, role: str, start: datetime, end: datetime) -> list[Holding]:
    """Who holds `role` over [start, end), as consecutive stretches; never raises for gaps.

    Each stretch is resolved by who_holds at its first instant, so cover and shifts follow
    exactly the one rule above.
    """
    shifts, covers = uow.rota.spans_between(role, start, end)
    edges = {start, end}
    moments = [m for s in shifts for m in (s.start, s.end)] + [
        m for c in covers for m in (c.start, c.end)
    ]
    edges.update(moment for moment in moments if start < moment < end)
    instants = sorted(edges)
    stretches: list[Holding] = []
    for begin, finish in zip(instants, instants[1:], strict=False):
        people = who_holds(uow, role, begin)
        ids = frozenset(person.id for person in people)
        if stretches and stretches[-1].staff_ids == ids:
            stretches[-1] = Holding(stretches[-1].start, finish, stretches[-1].people)
        else:
            stretches.append(Holding(begin, finish, people))
    return stretches


def next_handover(
    uow: UnitOfWork, role: str, after: datetime
) -> tuple[datetime, list[Staff]] | None:
    """The first instant after `after` at which the holders of `role` change, and the new
    holders (an empty list: nobody from then). None when nothing changes within 14 days."""
    stretches = holdings(uow, role, after, after + HANDOVER_HORIZON)
    if len(stretches) < 2:
        return None
    return stretches[1].start, stretches[1].people
