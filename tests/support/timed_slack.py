"""The fake Slack, also noting when each call arrived and reading escalation pings back.

Shared by the process tests (tests/test_replicas.py) and the lateness benchmark. Arrivals are
wall-clock (time.time()) so they compare with the due times the database holds.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from tests.support.fake_slack import Call, FakeSlack

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
        """(arrival, (recipient, review, level, repeat)) of every escalation message."""
        found = []
        for arrived, call in list(self.arrivals):
            if call.method != "chat.postMessage":
                continue
            match = PING.match(str(call.body.get("text", "")))
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
