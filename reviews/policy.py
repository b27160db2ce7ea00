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

from reviews.policy_lines import SourceLines, syntax_error
from rotas.rows import role_name

DURATION = re.compile(r"^(\d+)(s|m|h)$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
LONGEST = timedelta(hours=24)  # any one wait in the policy


class PolicyError(ValueError):
    """The policy file is malformed; the message names the file, the line and the problem."""


@dataclass(frozen=True)
class Level:
    after: timedelta
    notify: tuple[str, ...]
    channel: bool = False
    repeat_every: timedelta | None = None
    sms: bool = False  # text or page the role holders too, beside the direct message


@dataclass(frozen=True)
class Ladder:
    """What one review escalates by: its urgency band's levels and attendance target."""

    urgency: str
    attend_within: timedelta
    levels: tuple[Level, ...]
    # [fallback] after: a direct message unacknowledged this long after it went is followed by
    # a text or page. None: no such fallback (an undelivered message is still texted).
    fallback_after: timedelta | None = None

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
                        "sms": level.sms,
                    }
                    for level in self.levels
                ],
                "fallback_after": self.fallback_after.total_seconds()
                if self.fallback_after
                else None,
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
                    # Snapshots taken before texts existed have neither key.
                    sms=level.get("sms", False),
                )
                for level in data["levels"]
            ),
            fallback_after=timedelta(seconds=data["fallback_after"])
            if data.get("fallback_after")
            else None,
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
    fallback_after: timedelta | None = None
    # The band of a patient's or family's request with no NEWS2 score; None: as any unscored one.
    unscored_patient_or_family: str | None = None

    def ladder_for(self, news2: int | None, *, patient_or_family: bool = False) -> Ladder:
        """The ladder for a NEWS2 score; no score is `standard` (or the lowest band), except a
        patient's or family's, which takes the band `unscored_patient_or_family` names."""
        band = self._band(news2, patient_or_family)
        return Ladder(
            urgency=band.name,
            attend_within=band.attend_within,
            levels=band.levels or self.levels,
            fallback_after=self.fallback_after,
        )

    def _band(self, news2: int | None, patient_or_family: bool) -> Band:
        if news2 is None:
            wanted = "standard"
            if patient_or_family and self.unscored_patient_or_family:
                wanted = self.unscored_patient_or_family
            named = [b for b in self.bands if b.name == wanted]
            return named[0] if named else self.bands[-1]
        for band in self.bands:
            if news2 >= band.news2_at_least:
                return band
        return self.bands[-1]

    def roles(self) -> list[str]:
        ladders = [self.levels] + [b.levels for b in self.bands if b.levels]
        return sorted({role for levels in ladders for level in levels for role in level.notify})

    def asks_for_texts(self) -> bool:
        """Whether any level says sms = true or a [fallback] is set."""
        ladders = [self.levels] + [b.levels for b in self.bands if b.levels]
        return self.fallback_after is not None or any(
            level.sms for levels in ladders for level in levels
        )


def load_policy(path: Path) -> Policy:
    """Read and check the policy file; PolicyError naming the line and the problem if it is bad."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(f"{path}: cannot read the policy file ({type(error).__name__})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{path}{syntax_error(str(error))}") from None
    return parse_policy(data, text, str(path))


def parse_policy(data: dict[str, Any], text: str = "", name: str = "policy") -> Policy:
    """Check parsed TOML against the policy format; `text` lets errors name their line."""
    source = SourceLines(text)

    def fail(problem: str, table: str = "", index: int | None = None, key: str = "") -> PolicyError:
        return PolicyError(f"{name}{source.line(table, index, key)}: {problem}")

    unknown = sorted(set(data) - {"levels", "urgency", "unscored_patient_or_family", "fallback"})
    if unknown:
        raise fail(
            f"unknown setting {unknown[0]!r}: a policy has [[levels]], [urgency.NAME] and "
            "[fallback] tables and unscored_patient_or_family",
            key=unknown[0],
        )
    levels = _levels(data.get("levels"), "levels", fail)
    fallback_after = _fallback(data.get("fallback"), fail)
    bands_data = data.get("urgency")
    if not isinstance(bands_data, dict) or not bands_data:
        raise fail("needs at least one [urgency.NAME] band with news2_at_least and attend_within")
    bands = [_band(band_name, band, fail) for band_name, band in bands_data.items()]
    bands.sort(key=lambda b: b.news2_at_least, reverse=True)
    for higher, lower in zip(bands, bands[1:], strict=False):
        if higher.news2_at_least == lower.news2_at_least:
            raise fail(
                f"urgency.{higher.name} and urgency.{lower.name} both start at "
                f"news2_at_least = {lower.news2_at_least}; give each band its own",
                f"urgency.{lower.name}",
                key="news2_at_least",
            )
    if bands[-1].news2_at_least != 0:
        raise fail(
            "one urgency band must have news2_at_least = 0, so every score has a band "
            f"(the lowest is urgency.{bands[-1].name} at {bands[-1].news2_at_least})",
            f"urgency.{bands[-1].name}",
            key="news2_at_least",
        )
    unscored = data.get("unscored_patient_or_family")
    if unscored is not None and unscored not in {b.name for b in bands}:
        raise fail(
            f"unscored_patient_or_family = {unscored!r} names no [urgency.NAME] band; "
            f"use one of {', '.join(b.name for b in bands)}",
            key="unscored_patient_or_family",
        )
    return Policy(
        levels=levels,
        bands=tuple(bands),
        unscored_patient_or_family=unscored,
        fallback_after=fallback_after,
    )


def _fallback(raw: Any, fail: Any) -> timedelta | None:
    """[fallback] after = "2m", or None when the file has no [fallback] table."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise fail('fallback must be a table: [fallback] with after = "2m"', key="fallback")
    unknown = sorted(set(raw) - {"after"})
    if unknown:
        raise fail(
            f"fallback: unknown setting {unknown[0]!r} ([fallback] has only after)",
            "fallback",
            key=unknown[0],
        )
    return _duration(raw.get("after"), "fallback.after", fail, ("fallback", None, "after"))


def _band(band_name: str, band: Any, fail: Any) -> Band:
    table = f"urgency.{band_name}"
    if not isinstance(band, dict):
        raise fail(f"{table} must be a table: [urgency.{band_name}]", key=band_name)
    unknown = sorted(set(band) - {"news2_at_least", "attend_within", "levels"})
    if unknown:
        raise fail(
            f"{table}: unknown setting {unknown[0]!r} (a band has news2_at_least, "
            "attend_within and optionally [[urgency.NAME.levels]])",
            table,
            key=unknown[0],
        )
    threshold = band.get("news2_at_least")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 0 <= threshold <= 20:
        raise fail(
            f"{table}.news2_at_least must be a whole number from 0 to 20",
            table,
            key="news2_at_least",
        )
    attend_within = _duration(
        band.get("attend_within"), f"{table}.attend_within", fail, (table, None, "attend_within")
    )
    own = band.get("levels")
    return Band(
        name=band_name,
        news2_at_least=threshold,
        attend_within=attend_within,
        levels=_levels(own, f"{table}.levels", fail) if own is not None else None,
    )


def _levels(raw: Any, table: str, fail: Any) -> tuple[Level, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(e, dict) for e in raw):
        raise fail(f"needs at least one [[{table}]] table with after and notify", table, 0)
    levels: list[Level] = []
    for index, entry in enumerate(raw):
        here = f"[[{table}]] number {index + 1}"
        unknown = sorted(set(entry) - {"after", "notify", "channel", "repeat_every", "sms"})
        if unknown:
            raise fail(
                f"{here}: unknown setting {unknown[0]!r} (a level has after, notify, "
                "channel, sms and repeat_every)",
                table,
                index,
                unknown[0],
            )
        notify = entry.get("notify")
        if (
            not isinstance(notify, list)
            or not notify
            or not all(isinstance(r, str) and r.strip() for r in notify)
        ):
            raise fail(
                f'{here}: notify must be a list of role names, e.g. notify = ["outreach"]',
                table,
                index,
                "notify",
            )
        channel = entry.get("channel", False)
        if not isinstance(channel, bool):
            raise fail(f"{here}: channel must be true or false", table, index, "channel")
        sms = entry.get("sms", False)
        if not isinstance(sms, bool):
            raise fail(f"{here}: sms must be true or false", table, index, "sms")
        after = _duration(
            entry.get("after"), f"{here}: after", fail, (table, index, "after"), zero=True
        )
        repeat = entry.get("repeat_every")
        repeat_every = None
        if repeat is None and index == len(raw) - 1:
            # Without it the ladder ended there, a request unacknowledged and nothing to follow.
            raise fail(
                f'{here}: the last level needs repeat_every (e.g. repeat_every = "5m"): it '
                "repeats until someone acknowledges",
                table,
                index,
                "repeat_every",
            )
        if repeat is not None:
            if index != len(raw) - 1:
                raise fail(
                    f"{here}: only the last level may have repeat_every",
                    table,
                    index,
                    "repeat_every",
                )
            repeat_every = _duration(
                repeat, f"{here}: repeat_every", fail, (table, index, "repeat_every")
            )
        if levels and after < levels[-1].after:
            raise fail(
                f"{here}: after = {entry['after']!r} is earlier than the level above it; "
                "list levels in the order they fire",
                table,
                index,
                "after",
            )
        levels.append(
            Level(
                after=after,
                notify=_roles(notify, here, fail, (table, index, "notify")),
                channel=channel,
                repeat_every=repeat_every,
                sms=sms,
            )
        )
    return tuple(levels)


def _roles(
    notify: list[str], here: str, fail: Any, where: tuple[str, int | None, str]
) -> tuple[str, ...]:
    """The roles as the rota names them (lower-cased: "Outreach" is the rota's "outreach"),
    each once."""
    roles: list[str] = []
    for text in notify:
        try:
            role = role_name(text)
        except ValueError as error:
            raise fail(f"{here}: notify: {error}", *where) from None
        if role not in roles:
            roles.append(role)
    return tuple(roles)


def _duration(
    raw: Any, what: str, fail: Any, where: tuple[str, int | None, str], *, zero: bool = False
) -> timedelta:
    match = DURATION.match(raw) if isinstance(raw, str) else None
    if raw is None:
        raise fail(f'{what} is missing: give a duration like "5m"', *where)
    if not match:
        raise fail(f'{what} = {raw!r} is not a duration like "90s", "5m" or "1h"', *where)
    seconds = int(match[1]) * UNIT_SECONDS[match[2]]
    if seconds == 0 and not zero:
        raise fail(f"{what} must be longer than 0s", *where)
    if seconds > LONGEST.total_seconds():
        # Beyond a datetime's range, a raise failed for every request; short of it, a request
        # would wait days for its next level.
        raise fail(f"{what} = {raw!r} is longer than 24h: escalation counts in minutes", *where)
    return timedelta(seconds=seconds)
