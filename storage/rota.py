"""Queries on the staff directory, shifts and cover."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, literal, text, union_all
from sqlmodel import Session, col, func, select

from storage.tables import Cover, Shift, Staff

# Which Staff column holds a person's id on each platform.
PLATFORM_ID_COLUMN = {"slack": "slack_user_id", "teams": "teams_user_id", "shell": "email"}
# A Microsoft Entra object id (Teams' aadObjectId): a GUID.
ENTRA_OBJECT_ID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.IGNORECASE)

# Built once, with bound parameters: who holds a role, and who a platform's user is, are asked
# for every request raised, every level fired and every button pressed, and building each
# query anew cost more CPU than running it.
STAFF_BY_PLATFORM_ID = {
    platform: select(Staff).where(getattr(Staff, column) == bindparam("user_id"))
    for platform, column in PLATFORM_ID_COLUMN.items()
}
Duty = type[Shift] | type[Cover]
# A shift stops counting once a later import supersedes it, a cover once it is cancelled.
SHIFT_LIVE = col(Shift.superseded_at).is_(None)
COVER_LIVE = col(Cover.cancelled_at).is_(None)


def _at(duty: Duty, live: Any) -> Any:
    """`duty`'s `live` rows for :role spanning :at."""
    return select(duty).where(
        duty.role == bindparam("role"),
        col(duty.start) <= bindparam("at"),
        col(duty.end) > bindparam("at"),
        live,
    )


def _between(duty: Duty, live: Any) -> Any:
    """Whether :staff_id has a `live` `duty` row overlapping [:start, :end)."""
    return (
        select(duty.id)
        .where(
            duty.staff_id == bindparam("staff_id"),
            col(duty.start) < bindparam("end"),
            col(duty.end) > bindparam("start"),
            live,
        )
        .limit(1)
    )


COVERS_AT = _at(Cover, COVER_LIVE).order_by(col(Cover.recorded_at).desc())
SHIFTS_AT = _at(Shift, SHIFT_LIVE).order_by(col(Shift.start), col(Shift.id))


def _holding_at() -> Any:
    """Each live cover and shift for :role spanning :at, with its person, in one query: asked
    for every request raised and every level fired, where three queries (cover, shift, each
    person) cost a third of a raise's database work."""
    duties = union_all(
        *(
            _at(duty, live).with_only_columns(
                col(duty.staff_id).label("staff_id"),
                literal(duty is Cover).label("cover"),
                col(since).label("since"),
                col(duty.id).label("duty_id"),
            )
            for duty, since, live in (
                (Cover, Cover.recorded_at, COVER_LIVE),
                (Shift, Shift.start, SHIFT_LIVE),
            )
        )
    ).subquery()
    return select(Staff, duties.c.cover, duties.c.since, duties.c.duty_id).join(
        duties, duties.c.staff_id == Staff.id
    )


HOLDING_AT = _holding_at()
SHIFT_BETWEEN = _between(Shift, SHIFT_LIVE)
COVER_BETWEEN = _between(Cover, COVER_LIVE)


def platform_user_id(platform: str, user_id: str) -> str:
    """`user_id` as the directory keeps it: a Teams Entra object id in lower case, as Teams
    sends it (a rota may give it in upper case). Anything else as given: Slack's ids are upper
    case by design, and Teams' own `29:` ids are case-sensitive."""
    if platform == "teams" and ENTRA_OBJECT_ID.fullmatch(user_id):
        return user_id.lower()
    return user_id


class RotaStore:
    def __init__(self, session: Session):
        self.session = session

    def lock_role(self, role: str) -> None:
        """Hold `role`'s cover for this transaction. PostgreSQL: an advisory lock, since row
        locks cannot stop a second insert; SQLite's BEGIN IMMEDIATE already serialises."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"cover:{role}"}
            )

    def staff(self, staff_id: int) -> Staff | None:
        return self.session.get(Staff, staff_id)

    def staff_by_platform_id(self, platform: str, user_id: str) -> Staff | None:
        query = STAFF_BY_PLATFORM_ID.get(platform)
        if query is None:
            return None
        params = {"user_id": platform_user_id(platform, user_id)}
        return self.session.exec(query, params=params).first()

    def staff_by_email(self, email: str) -> Staff | None:
        return self.session.exec(select(Staff).where(Staff.email == email.lower())).first()

    def all_staff(self) -> Sequence[Staff]:
        return self.session.exec(select(Staff).order_by(col(Staff.name))).all()

    def add_staff(self, staff: Staff) -> Staff:
        self.session.add(staff)
        self.session.flush()
        return staff

    def on_duty_between(self, staff_id: int, start: datetime, end: datetime) -> bool:
        """Whether the person has a live shift or cover overlapping [start, end): one that no
        later import replaced and nobody cancelled (history alone makes nobody a responder)."""
        params = {"staff_id": staff_id, "start": start, "end": end}
        return (
            self.session.exec(SHIFT_BETWEEN, params=params).first() is not None
            or self.session.exec(COVER_BETWEEN, params=params).first() is not None
        )

    def withdraw_duties(self, staff_id: int, now: datetime) -> tuple[int, int]:
        """Withdraw the person's live shifts and cover that run past `now` (superseded or
        cancelled as of now, kept as history); how many of each."""
        shifts = self.session.exec(
            select(Shift).where(
                Shift.staff_id == staff_id,
                col(Shift.end) > now,
                SHIFT_LIVE,
            )
        ).all()
        covers = self.session.exec(
            select(Cover).where(
                Cover.staff_id == staff_id,
                col(Cover.end) > now,
                COVER_LIVE,
            )
        ).all()
        for shift in shifts:
            shift.superseded_at = now
        for cover in covers:
            cover.cancelled_at = now
        self.session.flush()
        return len(shifts), len(covers)

    def covers_at(self, role: str, at: datetime) -> Sequence[Cover]:
        """Live cover for `role` spanning `at`, the latest recorded first."""
        return self.session.exec(COVERS_AT, params={"role": role, "at": at}).all()

    def holding_at(self, role: str, at: datetime) -> tuple[list[Staff], list[Staff]]:
        """Who has live cover for `role` spanning `at` (the latest recorded first), and who a
        live shift (the earliest first): one entry per cover or shift."""
        rows = self.session.exec(HOLDING_AT, params={"role": role, "at": at}).all()
        covers = sorted((row for row in rows if row.cover), key=lambda r: r.since, reverse=True)
        shifts = sorted((row for row in rows if not row.cover), key=lambda r: (r.since, r.duty_id))
        return [row.Staff for row in covers], [row.Staff for row in shifts]

    def shifts_at(self, role: str, at: datetime) -> Sequence[Shift]:
        """Live shifts for `role` spanning `at`, the earliest first."""
        return self.session.exec(SHIFTS_AT, params={"role": role, "at": at}).all()

    def spans_between(
        self, role: str, start: datetime, end: datetime
    ) -> tuple[Sequence[Shift], Sequence[Cover]]:
        """Live shifts and cover for `role` overlapping [start, end)."""
        shifts = select(Shift).where(
            Shift.role == role,
            col(Shift.start) < end,
            col(Shift.end) > start,
            SHIFT_LIVE,
        )
        covers = select(Cover).where(
            Cover.role == role,
            col(Cover.start) < end,
            col(Cover.end) > start,
            COVER_LIVE,
        )
        return self.session.exec(shifts).all(), self.session.exec(covers).all()

    def roles(self) -> list[str]:
        shifts = select(Shift.role).where(SHIFT_LIVE).distinct()
        covers = select(Cover.role).where(COVER_LIVE).distinct()
        return sorted(set(self.session.exec(shifts).all()) | set(self.session.exec(covers).all()))

    def staff_by_name(self, name: str) -> Sequence[Staff]:
        query = select(Staff).where(func.lower(Staff.name) == name.strip().lower())
        return self.session.exec(query).all()

    def rostered(self, staff: Sequence[Staff]) -> list[Staff]:
        """Those of `staff` who have ever had a shift or a cover (superseded ones too): put on
        the rota by a rota admin, not only known from talking to the bot."""
        ids = [person.id for person in staff]
        shifts = select(Shift.staff_id).where(col(Shift.staff_id).in_(ids))
        covers = select(Cover.staff_id).where(col(Cover.staff_id).in_(ids))
        on_rota = set(self.session.exec(shifts).all()) | set(self.session.exec(covers).all())
        return [person for person in staff if person.id in on_rota]

    def holding_ended_before(self, role: str, at: datetime) -> datetime | None:
        """When someone last stopped holding `role`, at or before `at`: the end of a live shift
        or cover, or the moment one under way was withdrawn (`rota remove`, a later import)."""
        ends = [
            self._latest(Shift.end, Shift.role == role, col(Shift.end) <= at, SHIFT_LIVE),
            self._latest(Cover.end, Cover.role == role, col(Cover.end) <= at, COVER_LIVE),
        ]
        withdrawn = ((Shift, col(Shift.superseded_at)), (Cover, col(Cover.cancelled_at)))
        for table, out in withdrawn:
            span = col(table.start) < out, out < col(table.end)
            ends.append(self._latest(out, table.role == role, out <= at, *span))
        return max((end for end in ends if end is not None), default=None)

    def _latest(self, column: Any, *where: Any) -> datetime | None:
        return self.session.exec(select(func.max(column)).where(*where)).one()
