"""The rota's `mobile` and `pager` columns: checked, normalised, and shown only masked.

A mobile is stored as +447XXXXXXXXX, the form GOV.UK Notify and paging gateways take. Reports
show the last three digits only: a rota report is read over shoulders and pasted into chats.
"""

from __future__ import annotations

import re

SEPARATORS = re.compile(r"[\s\-().]")
UK_MOBILE = re.compile(r"(?:\+44|0044|44|0)(7\d{9})")
PAGER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@:-]{0,49}")


def uk_mobile(text: str) -> str:
    """`text` as +447XXXXXXXXX; ValueError with a sentence (the number masked) if it is not a
    UK mobile number."""
    digits = SEPARATORS.sub("", text)
    match = UK_MOBILE.fullmatch(digits)
    if not match:
        raise ValueError(
            f"bad mobile {masked(text)}: give a UK mobile number, 07 and 9 more digits, "
            "e.g. 07700 900123"
        )
    return "+44" + match[1]


def pager_id(text: str) -> str:
    """The paging gateway's id for a person; ValueError if it cannot be one."""
    value = text.strip()
    if not PAGER.fullmatch(value):
        raise ValueError(
            f"bad pager {masked(value)}: a pager id is up to 50 letters, digits and . _ + @ : -"
        )
    return value


def masked(number: str) -> str:
    """ "ending 123": enough to tell two people's numbers apart, not enough to call one."""
    tail = re.sub(r"\s", "", number)[-3:]
    return f"ending {tail}" if tail else "(empty)"
