"""The staff directory as a rota import sees it: find each row's person, add or update them.

A person is known by email, Slack user id or Teams user id. Slack and Teams ids a file leaves
out are asked of each platform by email (Slack's users.lookupByEmail, the Teams outreach team's
roster) before the import's transaction opens, so no database lock is held across a network
call. A person nobody knows is reported by name and never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from rotas.contact import masked
from rotas.rows import ShiftRow
from storage.database import Database, UnitOfWork
from storage.rota import PLATFORM_ID_COLUMN
from storage.tables import Staff

SlackLookup = Callable[[str], "str | None"]  # email -> a platform's user id, None when unknown


class UnknownPerson(ValueError):
    """A row's person cannot be found or told apart; the message says who and what to do."""


def ids_by_email(
    db: Database, rows: Iterable[ShiftRow], lookup: SlackLookup | None, platform: str = "slack"
) -> dict[str, str | None]:
    """email -> `platform`'s id (None: it does not know it) for rows without one whose person
    the directory does not already know there. Lookup failures (network, auth) propagate."""
    if lookup is None:
        return {}
    column = PLATFORM_ID_COLUMN[platform]
    wanted = sorted({row.email for row in rows if row.email and not getattr(row, column)})
    with db.unit_of_work() as uow:
        known = {e for e in wanted if (p := uow.rota.staff_by_email(e)) and getattr(p, column)}
    return {email: lookup(email) for email in wanted if email not in known}


def resolve_person(
    uow: UnitOfWork,
    row: ShiftRow,
    slack_ids: dict[str, str | None],
    changes: list[str],
    teams_ids: dict[str, str | None] | None = None,
    named: Collection[int] = (),
) -> Staff:
    """The directory's entry for the row's person, added or completed from the row. `named`:
    the people earlier rows of the same file named by email or id, whom a name alone may find.

    Raises UnknownPerson when only a name is given and the directory does not know it (or
    knows two), when no platform asked knows the email and no id is given or known, or when
    the row's ids belong to different people.
    """
    teams_ids = teams_ids or {}
    slack = row.slack_user_id or slack_ids.get(row.email or "")
    teams = row.teams_user_id or teams_ids.get(row.email or "")
    if not (row.email or slack or teams):
        return _complete(uow, _by_name(uow, row.name, named), row, {}, changes)
    asked = [name for name, ids in (("Slack", slack_ids), ("Teams", teams_ids)) if row.email in ids]
    if asked and not (slack or teams) and not _reachable(uow, row.email or ""):
        raise UnknownPerson(_not_known(row, asked))
    matches = (
        uow.rota.staff_by_email(row.email) if row.email else None,
        uow.rota.staff_by_platform_id("slack", slack) if slack else None,
        uow.rota.staff_by_platform_id("teams", teams) if teams else None,
    )
    found = {person.id: person for person in matches if person is not None}
    if len(found) > 1:
        names = " and ".join(sorted(p.name for p in found.values()))
        raise UnknownPerson(f"{row.name}'s email and user ids belong to different people ({names})")
    if not found:
        person = uow.rota.add_staff(
            Staff(
                name=row.name,
                email=row.email,
                slack_user_id=slack,
                teams_user_id=teams,
                mobile=row.mobile,
                pager=row.pager,
            )
        )
        found_by_email = _found_by_email(row, slack, teams)
        contact = "".join(f", {part}" for part in _contact_parts(person, ("mobile", "pager")))
        changes.append(f"added to the staff directory: {row.name}{found_by_email}{contact}")
        return person
    wanted = {"name": row.name, "email": row.email, "slack_user_id": slack, "teams_user_id": teams}
    return _complete(uow, next(iter(found.values())), row, wanted, changes)


def _complete(
    uow: UnitOfWork,
    person: Staff,
    row: ShiftRow,
    wanted: dict[str, str | None],
    changes: list[str],
) -> Staff:
    """Bring the person's entry up to what the row says; a value the row leaves out stays."""
    wanted = wanted | {"mobile": row.mobile, "pager": row.pager}
    updated = [key for key, value in wanted.items() if value and getattr(person, key) != value]
    for key in updated:
        setattr(person, key, wanted[key])
    if updated:
        uow.session.flush()
        what = ", ".join(_contact_parts(person, updated))
        changes.append(f"updated in the staff directory: {row.name} ({what})")
    return person


def _contact_parts(person: Staff, keys: Iterable[str]) -> list[str]:
    """Field names, with mobile and pager shown masked: the report is read over shoulders."""
    parts = []
    for key in keys:
        value = getattr(person, key)
        if key in ("mobile", "pager"):
            if value:
                parts.append(f"{key} {masked(value)}")
        else:
            parts.append(key)
    return parts


def _reachable(uow: UnitOfWork, email: str) -> bool:
    """The directory already reaches this email's person on some platform."""
    person = uow.rota.staff_by_email(email) if email else None
    return person is not None and bool(person.slack_user_id or person.teams_user_id)


def _not_known(row: ShiftRow, asked: list[str]) -> str:
    if asked == ["Slack"]:
        return (
            f"unknown person: Slack does not know {row.name} by {row.email}; check the email "
            "or give their slack_user_id"
        )
    if asked == ["Teams"]:
        return (
            f"unknown person: {row.name} ({row.email}) is not in the outreach team in Teams; "
            "check the email, add them to the team, or give their teams_user_id"
        )
    return (
        f"unknown person: neither Slack nor Teams knows {row.name} by {row.email}; check the "
        "email or give their slack_user_id or teams_user_id"
    )


def _found_by_email(row: ShiftRow, slack: str | None, teams: str | None) -> str:
    found = [
        name
        for name, value, given in (
            ("Slack", slack, row.slack_user_id),
            ("Teams", teams, row.teams_user_id),
        )
        if value and not given
    ]
    if not found:
        return ""
    return f" ({' and '.join(found)} id{'s' * (len(found) > 1)} found by email)"


def _by_name(uow: UnitOfWork, name: str, named: Collection[int]) -> Staff:
    """The one person of that name a rota has named before (or an earlier row of this file,
    `named`). Anyone who messages the bot is in the directory too (Slack and Teams add them on
    first contact): a name alone must never hand a shift, its pings and its Acknowledge button,
    to a stranger who shares it."""
    known = uow.rota.staff_by_name(name)
    matches = uow.rota.rostered(known) + [p for p in known if p.id in named]
    matches = list({person.id: person for person in matches}.values())
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UnknownPerson(
            f"unknown person: {name} has not been on the rota before; give their email, "
            "slack_user_id or teams_user_id"
        )
    raise UnknownPerson(f"{name} matches {len(matches)} people in the directory; give their email")
