"""Cover and swaps: someone else holds a role from now until a time, over the rota's shift.

Allowed for rota admins (ROTA_ADMINS) and for the person giving the role up (a current holder),
for their own time on it (and a gap after it), never into another person's shift or cover.
A new cover replaces any cover it overlaps for that stretch; a longer earlier cover resumes
after it. Every cover is audited (review_event kind "cover", no review), and everyone it takes
the role from, now or later, is told by direct message unless they recorded it themselves.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from reviews import notify
from reviews.context import Actor, Services
from reviews.errors import NotFound, ServiceError
from reviews.messages import Message, local_time
from reviews.permissions import check_cover
from rotas.lookup import holdings, who_holds
from rotas.times import BadTime, next_wall_time, parse_rota_time
from storage.database import UnitOfWork
from storage.tables import Cover, Staff

CLOCK_TIME = re.compile(r"(?P<hour>[01]?\d|2[0-3])[:.]?(?P<minute>[0-5]\d)")
LONGEST_COVER = timedelta(days=7)


def record_cover(
    *,
    services: Services,
    role: str,
    covering_platform: str,
    covering_user_id: str,
    by: Actor,
    until_text: str | None,
    say_until: str = "until",
) -> str:
    """Put the covering person on `role` from now until `until_text` (default: the end of the
    current shift of that role); the confirmation to show. `say_until` is how the caller's own
    syntax asks for the time (the command line's `--until`), for the examples in a refusal.

    Raises NotFound (no such role, covering person not in the directory), NotAllowed (not a
    rota admin nor the current holder) or ServiceError (an unreadable or past time).
    """
    role = role.strip().lower()
    now = services.clock.now()
    with services.db.unit_of_work() as uow:
        uow.rota.lock_role(role)  # two covers recorded at once must not both stay live
        _check_role(uow, services, role)
        covering = uow.rota.staff_by_platform_id(covering_platform, covering_user_id.strip())
        if covering is None or covering.id is None:
            raise NotFound(
                "That person is not in the staff directory yet. A rota admin can add them by "
                "importing a rota that names them (with their email)."
            )
        holders = who_holds(uow, role, now)
        giving_up = check_cover(uow, services, by, role, holders)
        if giving_up is None:  # a rota admin: anyone's time on the role
            until = _until(uow, role, until_text, now, services.timezone, say_until)
        else:
            until = _own_until(
                uow, role, giving_up, covering, until_text, now, services.timezone, say_until
            )
        # Whoever would have held it later in the cover's stretch, named in the confirmation:
        # "until 08:00" at 09:00 is tomorrow's, over the night nurse's shift.
        replaced = {p.id for p in holders} | {covering.id}
        later: dict[int | None, tuple[datetime, Staff]] = {}
        for stretch in holdings(uow, role, now, until)[1:]:
            for person in stretch.people:
                if person.id not in replaced:
                    later.setdefault(person.id, (stretch.start, person))
        _make_room(uow, role, now, until)
        recorded = Cover(
            role=role,
            staff_id=covering.id,
            start=now,
            end=until,
            recorded_by=by.label,
            recorded_at=now,
        )
        uow.session.add(recorded)
        uow.session.flush()  # its id keys the notices: once per cover, however many replicas
        displaced = [(now, p) for p in holders if p.id != covering.id] + list(later.values())
        unreachable = _tell_displaced(uow, services, recorded, covering, by, displaced)
        uow.events.record(
            review_id=None,
            kind="cover",
            at=now,
            **by.audited,
            role=role,
            covering=covering.name,
            staff_id=covering.id,
            start=now,
            end=until,
            instead_of=[p.name for p in holders] + [p.name for _, p in later.values()],
        )
    others = ", ".join(p.name for p in holders if p.id != covering.id)
    # Someone keeping their own role longer replaces nobody: "instead of nobody" would say the
    # role was uncovered until now.
    if others:
        instead = f"instead of {others}"
    elif holders:
        instead = "already holding it"
    else:
        instead = "instead of nobody"
    tz = services.timezone
    instead += "".join(
        f"; then instead of {person.name} from {local_time(start, tz)}"
        for start, person in later.values()
    )
    said = f"{covering.name} now holds {role} until {local_time(until, tz)} ({instead})."
    if unreachable:
        said += f" {' and '.join(unreachable)} cannot be messaged: tell them yourself."
    return said


def _tell_displaced(
    uow: UnitOfWork,
    services: Services,
    cover: Cover,
    covering: Staff,
    by: Actor,
    displaced: list[tuple[datetime, Staff]],
) -> list[str]:
    """Direct-message each person `cover` takes the role from (from when), except whoever
    recorded it: someone who thinks they hold the bleep, and does not, may not hand over or
    answer. The names of those who could not be messaged."""
    me = uow.rota.staff_by_platform_id(by.platform, by.user_id) or (
        uow.rota.staff_by_email(by.email) if by.email else None
    )
    tz = services.timezone
    unreachable = []
    for start, person in displaced:
        if me is not None and person.id == me.id:
            continue  # they read the confirmation
        text = (
            f"{covering.name} holds {cover.role} instead of you from {local_time(start, tz)} "
            f"until {local_time(cover.end, tz)} (recorded by {by.label})."
        )
        if not notify.to_person(
            uow,
            services.routes,
            person,
            key=f"cover:{cover.id}:displaced:{person.id}",
            message=Message(text=text),
            at=cover.start,
        ):
            unreachable.append(person.name)
    return unreachable


def _check_role(uow: UnitOfWork, services: Services, role: str) -> None:
    roles = sorted(set(services.policy.roles()) | set(uow.rota.roles()))
    if role not in roles:
        raise NotFound(f"There is no role called {role!r}. Roles: {', '.join(roles)}.")


def _until(
    uow: UnitOfWork,
    role: str,
    text: str | None,
    now: datetime,
    tz: ZoneInfo,
    say_until: str = "until",
) -> datetime:
    if text is None or not text.strip():
        until = _end_of_current_shift(uow, role, now)
        if until is None:
            raise ServiceError(
                f"Nobody's shift on {role} runs now, so say until when, e.g. {say_until} 20:00."
            )
        return until
    until = _read_time(text.strip(), now, tz, say_until)
    if until <= now:
        raise ServiceError(f"{text.strip()} has already passed; give a time still to come.")
    if until - now > LONGEST_COVER:
        raise ServiceError("Cover is for at most 7 days; change the rota itself for longer.")
    return until


def _own_until(
    uow: UnitOfWork,
    role: str,
    me: Staff,
    covering: Staff,
    text: str | None,
    now: datetime,
    tz: ZoneInfo,
    say_until: str = "until",
) -> datetime:
    """Until when a holder (not a rota admin) gives `role` up, to `covering`: their own time
    on it (their cover or shift now, and any of theirs that follows without a gap, until
    someone else would hold it), and past it only into time nobody else holds (a gap in the
    rota). Never over anyone else who would hold it meanwhile: a colleague on the same role at
    the same time, or the next person's shift (a cover replaces every holder). By default,
    their own time."""
    spared = {me.id, covering.id}  # the one taking it over loses nothing
    shift_end = _own_end(uow, role, me, now)
    own = next(
        (at for at, people in _holding(uow, role, now, shift_end) if people.keys() - spared),
        shift_end,
    )
    if text is None or not text.strip():
        until = own
    else:
        until = _until(uow, role, text, now, tz, say_until)
    displaced = {
        staff_id: person
        for _at, people in _holding(uow, role, now, until)
        for staff_id, person in people.items()
        if staff_id not in spared
    }
    if displaced:
        names = " and ".join(person.name for person in displaced.values())
        raise ServiceError(
            # A colleague holding it beside them now: name their own shift's end, not now.
            f"You can hand over only your own time on {role} "
            f"(until {local_time(own if own > now else shift_end, tz)}), "
            f"not {names}'s. Ask a rota admin."
        )
    return until


def _holding(
    uow: UnitOfWork, role: str, start: datetime, end: datetime
) -> list[tuple[datetime, dict[int | None, Staff]]]:
    """(moment, who holds `role` from then, by id) through [start, end), as things stand: who
    holds it changes only where a shift or cover begins or ends, so those moments are enough."""
    shifts, covers = uow.rota.spans_between(role, start, end)
    bounds = [(s.start, s.end) for s in shifts] + [(c.start, c.end) for c in covers]
    moments = {start} | {moment for pair in bounds for moment in pair if start < moment < end}
    return [
        (moment, {person.id: person for person in who_holds(uow, role, moment)})
        for moment in sorted(moments)
    ]


def _own_end(uow: UnitOfWork, role: str, me: Staff, now: datetime) -> datetime:
    """When `me`'s own holding of `role` from `now` ends: their cover's or shift's end, then
    the end of any cover or shift of theirs that runs on from it."""
    end = now
    while True:
        ends = [c.end for c in uow.rota.covers_at(role, end) if c.staff_id == me.id]
        ends += [s.end for s in uow.rota.shifts_at(role, end) if s.staff_id == me.id]
        later = max(ends, default=end)
        if later <= end or later - now > LONGEST_COVER:
            return min(later, now + LONGEST_COVER)
        end = later


def _read_time(text: str, now: datetime, tz: ZoneInfo, say_until: str = "until") -> datetime:
    clock = CLOCK_TIME.fullmatch(text)
    if clock:
        return next_wall_time(int(clock["hour"]), int(clock["minute"]), after=now, tz=tz)
    try:
        return parse_rota_time(text, tz)[0]
    except BadTime:
        raise ServiceError(
            f"I could not read {text!r} as a time; write e.g. {say_until} 20:00 or "
            f"{say_until} 2026-12-01T20:00."
        ) from None


def _end_of_current_shift(uow: UnitOfWork, role: str, now: datetime) -> datetime | None:
    """The cover running now ends first; otherwise the shift running now (the earliest end
    when two overlap)."""
    ends = [c.end for c in uow.rota.covers_at(role, now)]
    return min(ends or [s.end for s in uow.rota.shifts_at(role, now)], default=None)


def _make_room(uow: UnitOfWork, role: str, start: datetime, end: datetime) -> None:
    """Earlier cover overlapping [start, end) gives way: trimmed, cancelled, or resumed after."""
    _, covers = uow.rota.spans_between(role, start, end)
    for cover in covers:
        if cover.end > end:
            uow.session.add(
                Cover(
                    role=role,
                    staff_id=cover.staff_id,
                    start=end,
                    end=cover.end,
                    recorded_by=cover.recorded_by,
                    recorded_at=cover.recorded_at,
                )
            )
        if cover.start < start:
            cover.end = start
        else:
            cover.cancelled_at = start
    uow.session.flush()
