"""Taking someone off the rota: a person who left, or was put on it by mistake.

Their current and future shifts and cover are withdrawn as of now (kept as superseded or
cancelled history, never deleted), so at once they are no longer a responder nor pinged. A
later import of a rota file that names them puts those shifts back. Rota admins only;
audited (review_event kind "rota_remove", no review).
"""

from __future__ import annotations

from reviews.context import Actor, Services
from reviews.errors import NotFound
from reviews.permissions import check_rota_admin


def remove_from_rota(*, services: Services, platform: str, user_id: str, by: Actor) -> str:
    """Withdraw every current and future shift and cover of the person; what to show.
    NotAllowed (not a rota admin) or NotFound (nobody in the directory by that id)."""
    check_rota_admin(services, by, "take someone off the rota")
    now = services.clock.now()
    with services.db.unit_of_work() as uow:
        person = uow.rota.staff_by_platform_id(platform, user_id.strip())
        if person is None or person.id is None:
            raise NotFound(f"Nobody in the staff directory is {user_id.strip()!r}.")
        shifts, covers = uow.rota.withdraw_duties(person.id, now)
        uow.events.record(
            review_id=None,
            kind="rota_remove",
            at=now,
            **by.audited,
            staff_id=person.id,
            name=person.name,
            shifts=shifts,
            covers=covers,
        )
    return (
        f"{person.name} is off the rota from now: {shifts} shift(s) and {covers} cover(s) "
        "withdrawn. Past shifts stay in the history."
    )
