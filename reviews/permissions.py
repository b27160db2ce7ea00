"""Who may do what (CONTRACT.md "Who may do what"): one place, the same for every platform.

| action                          | anyone | responder          | rota admin | manager |
| raise a request                 | yes    | yes                | yes        | yes     |
| acknowledge, attend, outcome    | no     | yes                | no*        | no*     |
| cancel                          | raiser+| yes                | no*        | no*     |
| record cover for anyone; import | no     | own shifts (cover) | yes        | no      |
| see the digest and exports      | no     | no                 | no         | yes     |
(* unless also on the rota. + whoever raised it with the request form: a review a patient or
family asked for at their daily check-in was not raised by the staff member who recorded the
check-in, and only the outreach team cancels it.) A responder has a shift or cover within
rotas.lookup's HANDOVER_MARGIN of now; whoever took a request may also finish it. The command
line (platform "cli") is the trust's operators' own, on the server, and is not checked; it has
no way to take or cancel a request.
"""

from __future__ import annotations

from datetime import datetime

from reviews.context import Actor, Services
from reviews.errors import NotAllowed
from reviews.model import Action, Caller, Source
from rotas.lookup import is_responder
from storage.database import UnitOfWork
from storage.tables import Review, Staff

CLI = "cli"


def check_review_action(
    uow: UnitOfWork, review: Review, by: Actor, action: Action, at: datetime
) -> None:
    """NotAllowed unless `by` may do `action` to `review` at `at`."""
    if is_responder(uow, by.platform, by.user_id, at):
        return
    if review.acknowledged_platform == by.platform and review.acknowledged_user == by.user_id:
        return  # whoever took it may finish it, even past the end of their shift
    raiser = review.raised_platform == by.platform and review.raised_by == by.user_id
    if action is Action.CANCEL and raiser:
        if review.source != Source.CHECKIN:
            return
        # A check-in's "review now" is the patient's or family's own request, asked for around
        # the team treating the patient; the staff member who recorded the check-in did not
        # raise it, so only the outreach team closes it.
        raise NotAllowed(
            f"The {Caller(review.caller).label.lower()} asked for this review at their daily "
            "check-in, so only the outreach team on duty can cancel it. If it was recorded by "
            "mistake, tell them."
        )
    raise NotAllowed(
        f"Only the outreach rota's staff on duty can {action.label.lower()} a request, and you "
        "are not on the rota now. If you should be, ask a rota admin to add you."
    )


def check_manager(services: Services, by: Actor, what: str) -> None:
    """NotAllowed unless MANAGERS names `by`: the digest and exports are theirs."""
    if by.platform == CLI or by.is_in(services.managers):
        return
    raise NotAllowed(f"Only managers can see {what}. Ask to be added to MANAGERS if you should.")


def check_rota_admin(services: Services, by: Actor, what: str) -> None:
    """NotAllowed unless ROTA_ADMINS names `by` (importing a rota, removing a person)."""
    if by.platform == CLI or by.is_in(services.rota_admins):
        return
    raise NotAllowed(f"Only a rota admin can {what}. Ask one of them.")


def check_cover(
    uow: UnitOfWork, services: Services, by: Actor, role: str, holders: list[Staff]
) -> Staff | None:
    """NotAllowed unless `by` is a rota admin (None) or gives up `role`, which they hold now
    (who they are: they may give up only their own time on it, reviews.cover)."""
    if by.platform == CLI or by.is_in(services.rota_admins):
        return None
    me = uow.rota.staff_by_platform_id(by.platform, by.user_id) or (
        uow.rota.staff_by_email(by.email) if by.email else None
    )
    if me is not None and me.id in {p.id for p in holders}:
        return me
    names = " or ".join(p.name for p in holders) or "nobody at the moment"
    raise NotAllowed(
        f"Only a rota admin, or the person holding {role} now ({names}), can record cover "
        "for it. Ask a rota admin."
    )
