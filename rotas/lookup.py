"""Who holds a role at an instant: cover first, then the rota's shifts, else nobody."""

from __future__ import annotations

from datetime import datetime

from storage.database import UnitOfWork
from storage.tables import Staff


def who_holds(uow: UnitOfWork, role: str, at: datetime) -> list[Staff]:
    """Everyone holding `role` at `at`; an empty list when nobody is on. Never raises for gaps.

    Cover (an override) wins: while any cover spans `at`, the shift holders are off the hook.
    Two overlapping shifts both hold the role, and both are told.
    """
    covers = uow.rota.covers_at(role, at)
    staff_ids = [c.staff_id for c in covers] or [s.staff_id for s in uow.rota.shifts_at(role, at)]
    people = []
    for staff_id in dict.fromkeys(staff_ids):
        person = uow.rota.staff(staff_id)
        if person is not None:
            people.append(person)
    return people


def is_responder(uow: UnitOfWork, platform: str, user_id: str) -> bool:
    """A responder is anyone on the rota: in the staff directory with a shift or cover."""
    person = uow.rota.staff_by_platform_id(platform, user_id)
    return person is not None and person.id is not None and uow.rota.has_shifts(person.id)
