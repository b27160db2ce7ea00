"""The rules every typed field follows, whatever the form: what counts as a digit, which
characters are dropped, and how long a free-text field may be."""

from __future__ import annotations

import re
import unicodedata

# Longest accepted value of each free-text field; the forms carry the same limits.
LIMITS = {"ward": 60, "bed": 20, "concern": 2000, "reason": 500, "note": 500}
# "²".isdigit() is True and "\\d" matches full-width digits: only ASCII digits are digits here.
PHONE = re.compile(r"\+?[0-9 ()-]{3,20}")
NEWS2 = re.compile(r"[0-9]{1,2}")

# Seven digits or more, however a number is written ("943 476 5919", "943-476-5919",
# "(07700) 900123", "943.476.5919", two spaces between): an NHS number or a phone number, never a
# ward or a bed. A nurse typing the patient's NHS number in the Bed box sent it to a pager.
LONG_NUMBER = re.compile(r"[0-9](?:[\s()./+-]{0,3}[0-9]){6,}")


def clean_text(value: str, *, multiline: bool = False) -> str:
    """`value` without control, format (bidi overrides, zero-width) or unpaired surrogate
    characters, which hide or reorder what the team reads; tabs become spaces, and line
    breaks spaces unless `multiline`. Surrounding white space is dropped."""
    kept: list[str] = []
    for char in value.replace("\r\n", "\n"):
        kind = unicodedata.category(char)
        if char in "\n\r" or kind in ("Zl", "Zp"):
            kept.append("\n" if multiline else " ")
        elif char == "\t":
            kept.append(" ")
        elif kind[0] != "C":
            kept.append(char)
    return "".join(kept).strip()


def bound(field: str, value: str, message: str, errors: dict[str, str]) -> None:
    """Put `message` on `field` when `value` is longer than its LIMITS."""
    if len(value) > LIMITS[field]:
        errors.setdefault(field, message)
