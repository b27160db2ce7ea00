"""Reading rota times: local wall-clock times in TIMEZONE, stored as UTC.

The one rule for the clock changes (docs/rota.md):
- a time that does not exist (the spring-forward hour, 01:00-02:00 in the UK) moves forward by
  the gap: 01:30 is read as 02:30 BST, the same instant as 01:30 GMT;
- a time that happens twice (the autumn hour, 01:00-02:00 in the UK) is the first occurrence,
  in summer time (fold=0).
Both ends of every shift follow the same rule, so consecutive shifts still meet at one instant:
the rule can never open a gap or an overlap at a handover.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")


class BadTime(ValueError):
    """A time that cannot be read; the message says why, for the import report."""


def parse_rota_time(text: str, tz: ZoneInfo) -> tuple[datetime, str | None]:
    """`text` as a UTC instant, and a note when the DST rule had to decide what it meant.

    A value with a UTC offset (2026-12-01T08:00+00:00, ...Z) is taken as written.
    Raises BadTime for anything that is not a date and time.
    """
    value = text.strip()
    if not value:
        raise BadTime("no time given")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadTime(f"{value!r} is not a time like 2026-12-01T08:00") from None
    if len(value) <= 10:
        raise BadTime(f"{value!r} has no time of day; write it like 2026-12-01T08:00")
    if moment.tzinfo is not None:
        return moment.astimezone(UTC), None
    return local_to_utc(moment, tz)


def local_to_utc(wall: datetime, tz: ZoneInfo) -> tuple[datetime, str | None]:
    """A naive wall-clock time in `tz` as UTC, by the module's rule; a note if it applied."""
    first = wall.replace(tzinfo=tz, fold=0)
    second = wall.replace(tzinfo=tz, fold=1)
    instant = first.astimezone(UTC)
    shown = f"{wall:%Y-%m-%d %H:%M}"
    if first.utcoffset() == second.utcoffset():
        return instant, None
    if instant.astimezone(tz).replace(tzinfo=None) != wall:
        # fold=0 of a missing time uses the offset before the change: the gap's length later.
        actual = instant.astimezone(tz)
        return instant, (
            f"{shown} does not exist in {tz.key} (the clocks go forward); read as {actual:%H:%M %Z}"
        )
    return instant, (
        f"{shown} happens twice in {tz.key} (the clocks go back); "
        f"read as the first, {first:%H:%M %Z}"
    )


def next_wall_time(hour: int, minute: int, *, after: datetime, tz: ZoneInfo) -> datetime:
    """The first instant after `after` whose local time reads hour:minute: a missing time by
    the module's rule; a repeated one at whichever reading comes next (at 01:10 GMT on the
    night the clocks go back, 01:30 is twenty minutes away, not tomorrow)."""
    today = after.astimezone(tz).date()
    for day in (today, today + timedelta(days=1), today + timedelta(days=2)):
        # The third day only when a missing hour pushed tomorrow's past `after`.
        for candidate in _readings(datetime(day.year, day.month, day.day, hour, minute), tz):
            if candidate > after:
                return candidate
    raise AssertionError("a wall time recurs within three days")  # pragma: no cover


def _readings(wall: datetime, tz: ZoneInfo) -> list[datetime]:
    """The instants at which the clock reads `wall`, earliest first: the rule's one, and the
    second reading of a repeated time."""
    first, _ = local_to_utc(wall, tz)
    again = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if again > first and again.astimezone(tz).replace(tzinfo=None) == wall:
        return [first, again]
    return [first]


def local_time(moment: datetime, tz: ZoneInfo) -> str:
    """How every time is shown to people: 20:00 Tue 01 Dec, in `tz`. A time the clock reads
    twice (the hour the clocks go back) names its zone, 01:30 BST or 01:30 GMT, so nobody
    has to guess which."""
    local = moment.astimezone(tz)
    repeated = local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()
    zone = f" {local:%Z}" if repeated else ""
    return f"{local:%H:%M}{zone} {local:%a %d %b}"
