"""The staff directory as a rota import sees it: find each row's person, add or update them.

A person is known by email, Slack user id or Teams user id. Slack ids a file leaves out are
asked of Slack by email (users.lookupByEmail) before the import's transaction opens, so no
database lock is held across a network call. A person nobody knows is reported by name and
never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rotas.rows import ShiftRow
from storage.database import Database, UnitOfWork
from storage.tables import Staff

SlackLookup = Callable[[str], "str | None"]


class UnknownPerson(ValueError):
    """A row's person cannot be found or told apart; the message says who and what to do."""


def slack_ids_by_email(
    db: Database, rows: Iterable[ShiftRow], lookup: SlackLookup | None
) -> dict[str, str | None]:
    """email -> Slack id (None: Slack does not know it) for rows without one whose person the
    directory does not already know on Slack. Lookup failures (network, auth) propagate."""
    if lookup is None:
        return {}
    wanted = sorted({row.email for row in rows if row.email and not row.slack_user_id})
    with db.unit_of_work() as uow:
        known = {e for e in wanted if (p := uow.rota.staff_by_email(e)) and p.slack_user_id}
    return {email: lookup(email) for email in wanted if email not in known}


def resolve_person(
    uow: UnitOfWork, row: ShiftRow, slack_ids: dict[str, str | None], changes: list[str]
) -> Staff:
    """The directory's entry for the row's person, added or completed from the row.

    Raises UnknownPerson when only a name is given and the directory does not know it (or
    knows two), when Slack does not know the email and no other id is given, or when the
    row's ids belong to different people.
    """
    slack = row.slack_user_id or slack_ids.get(row.email or "")
    if not (row.email or slack or row.teams_user_id):
        return _by_name(uow, row.name)
    if row.email in slack_ids and slack is None and not row.teams_user_id:
        raise UnknownPerson(
            f"unknown person: Slack does not know {row.name} by {row.email}; check the email "
            "or give their slack_user_id"
        )
    matches = (
        uow.rota.staff_by_email(row.email) if row.email else None,
        uow.rota.staff_by_platform_id("slack", slack) if slack else None,
        uow.rota.staff_by_platform_id("teams", row.teams_user_id or ""),
    )
    found = {person.id: person for person in matches if person is not None}
    if len(found) > 1:
        names = " and ".join(sorted(p.name for p in found.values()))
        raise UnknownPerson(f"{row.name}'s email and user ids belong to different people ({names})")
    if not found:
        person = uow.rota.add_staff(
            Staff(
                name=row.name, email=row.email, slack_user_id=slack, teams_user_id=row.teams_user_id
            )
        )
        found_by_email = " (Slack id found by email)" if slack and not row.slack_user_id else ""
        changes.append(f"added to the staff directory: {row.name}{found_by_email}")
        return person
    person = next(iter(found.values()))
    wanted = {
        "name": row.name,
        "email": row.email,
        "slack_user_id": slack,
        "teams_user_id": row.teams_user_id,
    }
    updated = [key for key, value in wanted.items() if value and getattr(person, key) != value]
    for key in updated:
        setattr(person, key, wanted[key])
    if updated:
        uow.session.flush()
        changes.append(f"updated in the staff directory: {row.name} ({', '.join(updated)})")
    return person


def _by_name(uow: UnitOfWork, name: str) -> Staff:
    matches = uow.rota.staff_by_name(name)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UnknownPerson(
            f"unknown person: {name} is not in the staff directory; give their email, "
            "slack_user_id or teams_user_id"
        )
    raise UnknownPerson(f"{name} matches {len(matches)} people in the directory; give their email")
