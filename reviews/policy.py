"""The escalation policy: parsed from TOML once at start, snapshotted onto each review.

A bad file raises PolicyError with the line (where one can be found) and what to fix.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

DURATION = re.compile(r"^(\d+)(s|m|h)$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


class PolicyError(ValueError):
    """The policy file is malformed; the message names the file, the line and the problem."""


@dataclass(frozen=True)
class Level:
    after: timedelta
    notify: tuple[str, ...]
    channel: bool = False
    repeat_every: timedelta | None = None


@dataclass(frozen=True)
class Ladder:
    """What one review escalates by: its urgency band's levels and attendance target."""

    urgency: str
    attend_within: timedelta
    levels: tuple[Level, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "urgency": self.urgency,
                "attend_within": self.attend_within.total_seconds(),
                "levels": [
                    {
                        "after": level.after.total_seconds(),
                        "notify": list(level.notify),
                        "channel": level.channel,
                        "repeat_every": level.repeat_every.total_seconds()
                        if level.repeat_every
                        else None,
                    }
                    for level in self.levels
                ],
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> Ladder:
        data = json.loads(raw)
        return cls(
            urgency=data["urgency"],
            attend_within=timedelta(seconds=data["attend_within"]),
            levels=tuple(
                Level(
                    after=timedelta(seconds=level["after"]),
                    notify=tuple(level["notify"]),
                    channel=level["channel"],
                    repeat_every=timedelta(seconds=level["repeat_every"])
                    if level["repeat_every"]
                    else None,
                )
                for level in data["levels"]
            ),
        )


@dataclass(frozen=True)
class Band:
    name: str
    news2_at_least: int
    attend_within: timedelta
    levels: tuple[Level, ...] | None


@dataclass(frozen=True)
class Policy:
    levels: tuple[Level, ...]
    bands: tuple[Band, ...]  # highest threshold first

    def ladder_for(self, news2: int | None) -> Ladder:
        """The ladder for a NEWS2 score; no score is `standard` (or the lowest band)."""
        band = self._band(news2)
        return Ladder(
            urgency=band.name, attend_within=band.attend_within, levels=band.levels or self.levels
        )

    def _band(self, news2: int | None) -> Band:
        if news2 is None:
            named = [b for b in self.bands if b.name == "standard"]
            return named[0] if named else self.bands[-1]
        for band in self.bands:
            if news2 >= band.news2_at_least:
                return band
        return self.bands[-1]

    def roles(self) -> list[str]:
        ladders = [self.levels] + [b.levels for b in self.bands if b.levels]
        return sorted({role for levels in ladders for level in levels for role in level.notify})


def load_policy(path: Path) -> Policy:
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{path}: {error}") from None
    return parse_policy(data, text, str(path))


def parse_policy(data: dict[str, Any], text: str = "", name: str = "policy") -> Policy:
    def fail(problem: str, needle: str = "") -> PolicyError:
        return PolicyError(f"{name}{_line_of(text, needle)}: {problem}")

    levels = _levels(data.get("levels"), "levels", fail)
    bands_data = data.get("urgency", {})
    if not isinstance(bands_data, dict) or not bands_data:
        raise fail("needs at least one [urgency.NAME] band with news2_at_least and attend_within")
    bands = []
    for band_name, band in bands_data.items():
        where = f"urgency.{band_name}"
        if not isinstance(band, dict):
            raise fail(f"{where} must be a table", f"[urgency.{band_name}]")
        threshold = band.get("news2_at_least")
        if not isinstance(threshold, int) or not 0 <= threshold <= 20:
            raise fail(f"{where}.news2_at_least must be a whole number from 0 to 20",
                       f"[urgency.{band_name}]")
        own = band.get("levels")
        bands.append(
            Band(
                name=band_name,
                news2_at_least=threshold,
                attend_within=_duration(band.get("attend_within"), f"{where}.attend_within", fail),
                levels=_levels(own, f"{where}.levels", fail) if own is not None else None,
            )
        )
    bands.sort(key=lambda b: b.news2_at_least, reverse=True)
    if bands[-1].news2_at_least != 0:
        raise fail("one urgency band must have news2_at_least = 0 so every score has a band")
    unknown = set(data) - {"levels", "urgency"}
    if unknown:
        raise fail(f"unknown key {sorted(unknown)[0]!r}: only [[levels]] and [urgency.*]",
                   sorted(unknown)[0])
    return Policy(levels=levels, bands=tuple(bands))


def _levels(raw: Any, where: str, fail: Any) -> tuple[Level, ...]:
    if not isinstance(raw, list) or not raw:
        raise fail(f"{where}: needs at least one [[{where}]] entry")
    levels = []
    for index, entry in enumerate(raw):
        here = f"{where}[{index}]"
        notify = entry.get("notify")
        if not isinstance(notify, list) or not notify or not all(
            isinstance(r, str) and r.strip() for r in notify
        ):
            raise fail(f"{here}.notify must be a list of role names, e.g. [\"outreach\"]",
                       "notify")
        repeat = entry.get("repeat_every")
        if repeat is not None and index != len(raw) - 1:
            raise fail(f"{here}.repeat_every: only the last level repeats", "repeat_every")
        level = Level(
            after=_duration(entry.get("after"), f"{here}.after", fail),
            notify=tuple(r.strip() for r in notify),
            channel=bool(entry.get("channel", False)),
            repeat_every=_duration(repeat, f"{here}.repeat_every", fail) if repeat else None,
        )
        if level.repeat_every is not None and level.repeat_every <= timedelta(0):
            raise fail(f"{here}.repeat_every must be longer than 0s", "repeat_every")
        if levels and level.after < levels[-1].after:
            raise fail(f"{here}.after comes before the level above it; list levels in order",
                       str(entry.get("after")))
        levels.append(level)
    return tuple(levels)


def _duration(raw: Any, where: str, fail: Any) -> timedelta:
    match = DURATION.match(raw) if isinstance(raw, str) else None
    if not match:
        raise fail(f"{where} = {raw!r} is not a duration like \"90s\", \"5m\" or \"1h\"",
                   f'"{raw}"' if isinstance(raw, str) else "")
    return timedelta(seconds=int(match[1]) * UNIT_SECONDS[match[2]])


def _line_of(text: str, needle: str) -> str:
    if not text or not needle:
        return ""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line.split("#", 1)[0]:
            return f" line {number}"
    return ""
