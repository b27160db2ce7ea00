"""The fake Slack, also noting when each call arrived and reading escalation pings back.

Shared by the process tests (tests/test_replicas.py) and the lateness benchmark. Arrivals are
wall-clock (time.time()) so they compare with the due times the database holds.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_slack import Call, Failure, FakeSlack

PING = re.compile(
    r"^(?:New rapid review (RR-\d+)|Escalation level (\d+)(?:, repeat (\d+))?: (RR-\d+))"
)
PingKey = tuple[str, str, int, int]  # (recipient or channel, review, level, repeat)


@dataclass
class TimedSlack(FakeSlack):
    arrivals: list[tuple[float, Call]] = field(default_factory=list)

    def record(self, call: Call) -> None:
        self.arrivals.append((time.time(), call))
        super().record(call)

    def pings(self) -> list[tuple[float, PingKey]]:
        """(arrival, (recipient, review, level, repeat)) of every escalation message Slack
        took (not those it refused: a 429 or a failure is not a message)."""
        found = []
        for arrived, call in list(self.arrivals):
            if call.method != "chat.postMessage" or not call.answer.get("ok"):
                continue
            # A message standing for several (one person's fallen behind) has a line each.
            for line in str(call.body.get("text", "")).split("\n"):
                match = PING.match(line.removeprefix("• "))
                if match:
                    reference = match[1] or match[4]
                    key = (call.body["channel"], reference, int(match[2] or 0), int(match[3] or 0))
                    found.append((arrived, key))
        return found

    def wait_for_ping(self, key: PingKey, timeout: float) -> float:
        """When `key` arrived; AssertionError if it has not within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for arrived, seen in self.pings():
                if seen == key:
                    return arrived
            time.sleep(0.05)
        raise AssertionError(f"{key} never arrived; saw {[k for _, k in self.pings()]}")


@dataclass
class RateLimitedSlack(TimedSlack):
    """Slack's limit on posting: about one message a second to each conversation, 429 with
    Retry-After beyond it; a channel, and each person's direct messages (posted to their user
    id), are a conversation each. Real Slack allows short bursts; this fake allows none."""

    interval: float = 1.0
    posted: dict[str, float] = field(default_factory=dict)  # channel -> last accepted post
    limited: int = 0  # 429s answered

    def take_failure(self, method: str, body: dict[str, Any] | None = None) -> Failure | None:
        failure = super().take_failure(method, body)
        if failure or method not in ("chat.postMessage", "chat.update") or body is None:
            return failure
        channel = str(body.get("channel", ""))
        with self._lock:
            now = time.monotonic()
            if now - self.posted.get(channel, -math.inf) < self.interval:
                self.limited += 1
                return Failure(1, 429, retry_after=math.ceil(self.interval))
            self.posted[channel] = now
        return None
