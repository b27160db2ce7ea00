"""The rota as iCalendar (.ics) from a rostering tool or a shared calendar: one VEVENT a shift.

The mapping (docs/rota.md):
- role: the event's first CATEGORIES value; without one, SUMMARY's text before ":" (or " - ");
- person: the ATTENDEE (mailto: gives the email, CN the name); without one, SUMMARY's text
  after ":" (or " - "), or all of SUMMARY when CATEGORIES gave the role. A name alone must
  match someone already in the staff directory;
- times: DTSTART and DTEND (or DURATION). UTC (...Z) is taken as written; TZID or a floating
  time is a wall-clock time read by the DST rule of rotas.times.
Repeating events (RRULE) and all-day events are rejected: a rota names each shift.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar

from rotas.rows import (
    ReadResult,
    ShiftRow,
    check_span,
    email_address,
    reject_duplicates,
    role_name,
)
from rotas.times import local_to_utc

SEPARATOR = re.compile(r"\s*(?::|\s-\s)\s*")


BEGIN = "BEGIN:VEVENT"


def read_ics(text: str, tz: ZoneInfo) -> ReadResult:
    """Every VEVENT as a ShiftRow or a rejection naming the line where the event begins."""
    result = ReadResult()
    try:
        calendar = Calendar.from_ical(text)
    except ValueError as error:
        result.reject(1, f"not an iCalendar file ({error})")
        return result
    except OSError:  # the reader looked a TZID up itself: "Europe" is a folder of zones
        result.reject(*_bad_zone(text))
        return result
    # iCalendar's names are case-insensitive: "Begin:VEvent" begins an event too. Each event is
    # read; one never matched to its line (were the two counts ever to differ) would be lost.
    begins = [n for n, raw in enumerate(text.splitlines(), 1) if raw.strip().upper() == BEGIN]
    events = calendar.walk("VEVENT")
    if len(begins) != len(events):
        result.reject(1, f"{len(events)} events, but {len(begins)} lines say BEGIN:VEVENT")
        return result
    for line, event in zip(begins, events, strict=True):
        try:
            row = _read_event(event, line, tz, result)
        except ValueError as error:
            result.reject(line, str(error))
            continue
        if row is not None:
            result.rows.append(row)
    reject_duplicates(result)
    return result


def _read_event(event: Any, line: int, tz: ZoneInfo, result: ReadResult) -> ShiftRow | None:
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        result.notes.append(f"line {line}: a cancelled event, skipped")
        return None
    if event.get("RRULE"):
        raise ValueError("a repeating event (RRULE): export one event per shift")
    role, name, email = _role_and_person(event)
    start = _instant(event, "DTSTART", line, tz, result)
    if event.get("DTEND") is not None:
        end = _instant(event, "DTEND", line, tz, result)
    elif event.get("DURATION") is not None:
        end = _end_after(event, start, line, tz, result)
    else:
        raise ValueError("bad times: the event has no DTEND or DURATION")
    problem = check_span(start, end)
    if problem:
        raise ValueError(problem)
    return ShiftRow(line, role, name, email, None, None, start, end)


def _role_and_person(event: Any) -> tuple[str, str, str | None]:
    summary = str(event.get("SUMMARY", "")).strip()
    parts = SEPARATOR.split(summary, maxsplit=1)
    categories = _categories(event)
    if categories:
        role_text, summary_name = categories[0], parts[-1]
    elif len(parts) == 2:
        role_text, summary_name = parts
    else:
        raise ValueError(
            f"unknown role format: no CATEGORIES, and SUMMARY {summary!r} is not "
            "'ROLE: NAME' (e.g. 'outreach: Alex Carter')"
        )
    role = role_name(role_text)
    attendees = event.get("ATTENDEE")
    if isinstance(attendees, list):
        if len(attendees) > 1:
            raise ValueError("more than one ATTENDEE: give one event per person's shift")
        attendees = attendees[0]
    if attendees is not None:
        address = str(attendees)
        email = address.split(":", 1)[1] if address.lower().startswith("mailto:") else ""
        email = email_address(email) if email.strip() else ""
        name = str(attendees.params.get("CN", "")).strip() or summary_name.strip()
        return role, name or email, email or None
    if not summary_name.strip():
        raise ValueError("unknown person: no ATTENDEE and no name in SUMMARY")
    return role, summary_name.strip(), None


def _categories(event: Any) -> list[str]:
    raw = event.get("CATEGORIES")
    if raw is None:
        return []
    values = raw if isinstance(raw, list) else [raw]
    return [str(c).strip() for value in values for c in getattr(value, "cats", [value]) if c]


def _instant(event: Any, name: str, line: int, tz: ZoneInfo, result: ReadResult) -> datetime:
    prop = event[name]
    value = prop.dt
    if isinstance(value, date) and not isinstance(value, datetime):
        raise ValueError(f"bad times: {name} is a date without a time (an all-day event)")
    zone = _wall_zone(prop, tz)
    if zone is None:
        return value.astimezone(UTC)
    return _from_wall(value.replace(tzinfo=None), zone, line, result)


def _end_after(
    event: Any, start: datetime, line: int, tz: ZoneInfo, result: ReadResult
) -> datetime:
    """DTSTART plus DURATION. Its days are calendar days (RFC 5545, 3.3.6): from a wall-clock
    DTSTART, P1D at 20:00 ends at 20:00 the next day, 23 or 25 hours later across a clock change
    (it read 24 hours, an hour off the rota's own times); its hours and minutes are exact."""
    duration = event["DURATION"].dt
    zone = _wall_zone(event["DTSTART"], tz)
    if zone is None or not duration.days:
        return start + duration
    wall = start.astimezone(zone).replace(tzinfo=None) + timedelta(days=duration.days)
    return _from_wall(wall, zone, line, result) + (duration - timedelta(days=duration.days))


def _wall_zone(prop: Any, tz: ZoneInfo) -> ZoneInfo | None:
    """The zone a DTSTART or DTEND is a wall-clock time in (its TZID, else the trust's); None for
    a UTC time (...Z), taken as written."""
    value = prop.dt
    if value.tzinfo is not None and value.utcoffset() == timedelta(0) and "TZID" not in prop.params:
        return None
    return _zone(str(prop.params["TZID"])) if "TZID" in prop.params else tz


def _from_wall(wall: datetime, zone: ZoneInfo, line: int, result: ReadResult) -> datetime:
    instant, note = local_to_utc(wall, zone)
    if note:
        result.notes.append(f"line {line}: {note}")
    return instant


# Outlook and Exchange name zones as Windows does ("GMT Standard Time"), with the zone's rules in
# the file: every Outlook rota was refused as "unknown time zone". These are the names of the
# zones (Unicode CLDR's windowsZones) a UK or European trust's calendars use; the display name
# Outlook sometimes writes instead ends with the cities.
WINDOWS_ZONES = {
    "gmt standard time": "Europe/London",
    "greenwich standard time": "Atlantic/Reykjavik",
    "utc": "UTC",
    "w. europe standard time": "Europe/Berlin",
    "romance standard time": "Europe/Paris",
    "central europe standard time": "Europe/Budapest",
    "central european standard time": "Europe/Warsaw",
    "gtb standard time": "Europe/Bucharest",
    "fle standard time": "Europe/Kiev",
    "e. europe standard time": "Europe/Chisinau",
}
DISPLAY_NAMES = {"dublin, edinburgh, lisbon, london": "Europe/London"}


def _bad_zone(text: str) -> tuple[int, str]:
    """The line and the rejection of the first TZID that names no zone."""
    for number, line in enumerate(text.splitlines(), 1):
        for tzid in re.findall(r"TZID=\"?([^\";:]+)", line, re.IGNORECASE):
            try:
                _zone(tzid)
            except ValueError as error:
                return number, str(error)
    return 1, "bad times: a TZID names no time zone"


def _zone(tzid: str) -> ZoneInfo:
    """The zone a TZID names: an IANA name (Europe/London) or a Windows one."""
    name = tzid.strip()
    name = WINDOWS_ZONES.get(name.lower(), name)
    for cities, iana in DISPLAY_NAMES.items():
        if name.lower().endswith(cities):
            name = iana
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a folder of zones
        raise ValueError(f"bad times: unknown time zone {tzid!r}") from None
