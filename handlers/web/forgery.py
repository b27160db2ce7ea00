"""The public form's anti-forgery field: a signed, time-limited token, checked without any
stored state so every replica agrees. Each form load gets its own, and with what was sent on it
makes the request's submission key: a double-tapped Send, or a reload, raises one request, while
someone else's answers sent from the same loaded form (a shared tablet, Back and Send) raise
their own."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

LIFETIME = timedelta(hours=2)  # long enough to write slowly; short enough to be worth little
TOKEN = re.compile(
    r"^(?P<ward>[A-Za-z0-9-]{1,40})\.(?P<issued>[0-9]{1,12})\.(?P<nonce>[A-Za-z0-9_-]{16})\.(?P<sig>[0-9a-f]{64})$"
)


class Forged(ValueError):
    """Missing, malformed, for another ward, or not signed by us."""


class Expired(ValueError):
    """Signed by us, but older than LIFETIME (or from the future)."""


@dataclass(frozen=True)
class FormTokens:
    key: bytes

    def issue(self, ward_code: str, now: datetime) -> str:
        payload = f"{ward_code.lower()}.{int(now.timestamp())}.{secrets.token_urlsafe(12)}"
        return f"{payload}.{self._sign(payload)}"

    def check(self, token: str, ward_code: str, now: datetime) -> str:
        """The submission key the token stands for; Forged or Expired otherwise."""
        match = TOKEN.match(token)
        if not match or match["ward"] != ward_code.lower():
            raise Forged("not a token for this ward")
        payload = token.rsplit(".", 1)[0]
        if not hmac.compare_digest(self._sign(payload), match["sig"]):
            raise Forged("bad signature")
        age = now.timestamp() - int(match["issued"])
        if not -60 <= age <= LIFETIME.total_seconds():  # a minute's grace for replicas' clocks
            raise Expired("too old")
        return f"web:{match['nonce']}"

    def submission(self, form_key: str, sent: Mapping[str, str]) -> str:
        """`form_key` (from check) narrowed to the answers `sent`; keyed, so the stored key
        tells nothing of what was typed."""
        answers = json.dumps(sorted(sent.items()), ensure_ascii=False)
        digest = hmac.new(self.key, f"sent:{answers}".encode(), hashlib.sha256).hexdigest()
        return f"{form_key}:{digest[:32]}"

    def _sign(self, payload: str) -> str:
        return hmac.new(self.key, f"form:{payload}".encode(), hashlib.sha256).hexdigest()
