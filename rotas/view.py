"""The rota as people read it: every role, who holds it, until when, and who is next."""

from __future__ import annotations

from datetime import datetime

from rotas.context import RotaServices
from rotas.lookup import HANDOVER_HORIZON, next_handover, who_holds
from rotas.times import local_time
from storage.database import UnitOfWork
from storage.tables import Staff


def rota_lines(*, services: RotaServices, at: datetime) -> list[str]:
    """One line a role: the policy's roles first, then any other role on the rota.

    Never raises for gaps: a role nobody holds says "nobody on call". DatabaseUnavailable
    propagates.
    """
    with services.db.reading() as uow:
        roles = list(dict.fromkeys([*services.policy.roles(), *uow.rota.roles()]))
        return [_line(uow, services, role, at) for role in roles]


def _line(uow: UnitOfWork, services: RotaServices, role: str, at: datetime) -> str:
    holders = who_holds(uow, role, at)
    covering = bool(holders) and bool(uow.rota.covers_at(role, at))
    now = names(holders) + (" (cover)" if covering else "") if holders else "nobody on call"
    change = next_handover(uow, role, at)
    if change is None:
        days = HANDOVER_HORIZON.days
        return f"{role}: {now}, no change in the next {days} days"
    when, after = local_time(change[0], services.timezone), change[1]
    if not holders:
        return f"{role}: {now} until {when}; then {names(after)}"
    then = names(after) if after else "nobody on call"
    return f"{role}: {now} until {when}; then {then}"


def names(people: list[Staff]) -> str:
    return " and ".join(person.name for person in people)
