"""The trust's wards (CONTRACT.md "Wards file"): read and checked once at start, like the policy.

A bad file raises WardsError naming the file, the ward and what is wrong, in one line.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reviews.text import LONG_NUMBER

CODE = re.compile(r"^[A-Za-z0-9-]{1,40}$")
KEYS = {"code", "name", "site", "beds", "phone", "slack_channel", "teams_conversation"}
# Codes the public pages' own addresses use where a ward code goes (/concern/status/TOKEN, in
# handlers/web): a ward with one of them would have no working form.
RESERVED_CODES = frozenset({"status"})


class WardsError(ValueError):
    """The wards file is malformed; the message names the file, the ward and the problem."""


@dataclass(frozen=True)
class Ward:
    code: str  # used in web addresses: /concern/ward-7
    name: str  # what people call it, and what a request records as its ward
    site: str = ""
    beds: int = 0
    phone: str = ""  # this ward's Martha's Rule line; else CONCERN_PHONE
    slack_channel: str = ""
    teams_conversation: str = ""


@dataclass(frozen=True)
class Wards:
    """The wards of the file in its order; empty when the trust has no wards file."""

    wards: tuple[Ward, ...] = ()

    def __iter__(self) -> Any:
        return iter(self.wards)

    def __len__(self) -> int:
        return len(self.wards)

    def by_code(self, code: str) -> Ward | None:
        """The ward whose code is `code`, ignoring case; None when there is none."""
        return next((w for w in self.wards if w.code.lower() == code.lower()), None)

    def names(self) -> list[str]:
        return [w.name for w in self.wards]

    def named(self, typed: str) -> Ward | None:
        """The ward `typed` names, ignoring case and spaces around it: its code ("ward-7"), its
        name, or its name before the description in brackets ("Ward 7" of "Ward 7 (Acute
        Medicine)") when no other ward's is the same; None when no ward is named so, or two
        are ("Ward 7" of a trust with a Ward 7 at each of its hospitals: never guessed)."""
        wanted = " ".join(typed.split()).lower()
        for ward in self.wards:
            if wanted in (ward.code.lower(), " ".join(ward.name.split()).lower()):
                return ward  # codes and names are each a ward's own (parse_wards)
        short = [w for w in self.wards if " ".join(w.name.split("(")[0].split()).lower() == wanted]
        return short[0] if len(short) == 1 else None


def chosen_ward(chosen: str, typed: str, wards: Wards | None = None) -> str:
    """The ward of a staff form that lists the wards and has a box for one not listed: what
    was typed wins, as the listed ward's name when it names one ("Ward 7", "ward-7"), so that
    its check-ins and requests count as that ward's."""
    listed = wards.named(typed) if wards is not None and typed.strip() else None
    return listed.name if listed else typed.strip() or chosen.strip()


def load_wards(path: Path | None) -> Wards:
    """Read and check the wards file; no file (None) is no wards. WardsError if it is bad."""
    if path is None:
        return Wards()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise WardsError(f"{path}: cannot read the wards file ({type(error).__name__})") from None
    except tomllib.TOMLDecodeError as error:
        raise WardsError(f"{path}: TOML syntax: {error}") from None
    return parse_wards(data, str(path))


def parse_wards(data: dict[str, Any], name: str = "wards file") -> Wards:
    """Check parsed TOML against the wards format."""
    unknown = sorted(set(data) - {"wards"})
    if unknown:
        raise WardsError(f"{name}: unknown setting {unknown[0]!r}: the file holds [[wards]] tables")
    raw = data.get("wards")
    if not isinstance(raw, list) or not raw or not all(isinstance(w, dict) for w in raw):
        raise WardsError(f"{name}: needs at least one [[wards]] table with code and name")
    wards = [_ward(entry, name, index) for index, entry in enumerate(raw)]
    seen: dict[str, str] = {}
    for ward in wards:
        for key in (ward.code.lower(), ward.name.lower()):
            if key in seen:
                raise WardsError(
                    f"{name}: ward {ward.code!r}: {key!r} is used by ward {seen[key]!r} too; "
                    "each ward needs its own code and name"
                )
            seen[key] = ward.code
    return Wards(tuple(wards))


def _ward(entry: dict[str, Any], name: str, index: int) -> Ward:
    code = entry.get("code")
    if not isinstance(code, str) or not CODE.match(code):
        raise WardsError(
            f"{name}: ward {index + 1}: code must be letters, digits and '-' (at most 40), "
            'e.g. code = "ward-7"'
        )
    where = f"{name}: ward {code!r}"
    if code.lower() in RESERVED_CODES:
        raise WardsError(
            f"{where}: the code {code!r} is taken by the public pages' own address "
            f'/concern/{code.lower()}/...; choose another code, e.g. code = "{code}-ward"'
        )
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise WardsError(
            f"{where}: unknown setting {unknown[0]!r} (a ward has {', '.join(sorted(KEYS))})"
        )
    text = {key: entry.get(key, "") for key in KEYS - {"code", "beds"}}
    for key, value in text.items():
        if not isinstance(value, str):
            raise WardsError(f"{where}: {key} must be text in quotes")
    ward_name = text["name"].strip()
    if not ward_name or len(ward_name) > 60:
        raise WardsError(f"{where}: name must be given, at most 60 characters")
    if LONG_NUMBER.search(ward_name):  # every form would refuse it as an NHS or phone number
        raise WardsError(f"{where}: name must not hold seven digits or more, as phone numbers do")
    beds = entry.get("beds", 0)
    if isinstance(beds, bool) or not isinstance(beds, int) or not 0 <= beds <= 1000:
        raise WardsError(f"{where}: beds must be a whole number from 0 to 1000")
    phone = text["phone"].strip()
    if phone and not re.fullmatch(r"\+?[0-9 ()-]{3,25}", phone):
        raise WardsError(f'{where}: phone must be a phone number, e.g. "01234 567890"')
    return Ward(
        code=code,
        name=ward_name,
        site=text["site"].strip(),
        beds=beds,
        phone=phone,
        slack_channel=text["slack_channel"].strip(),
        teams_conversation=text["teams_conversation"].strip(),
    )
