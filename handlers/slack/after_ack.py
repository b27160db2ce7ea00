"""The work a button press does after its ack, run behind the acks still to be given.

bolt acks first and lets a listener work on. Acknowledge and Attending change state after the
ack: the card update tells the team, and a refusal still reaches the presser privately. But one
process has one interpreter lock, and under a burst of presses (fifty people at once in
bench/http_latency.py) the state changes after earlier acks took it from the acks still
waiting, whose answers slowed threefold. So that work waits until no Slack request is in flight,
and never longer than `yield_seconds` after its own ack: a steady stream of requests delays a
state change by that much at most, and never starves it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

log = logging.getLogger(__name__)

YIELD_SECONDS = 1.0
# A few threads: on PostgreSQL one press's round trips overlap another's.
THREADS = 4


class AfterAck:
    """Counts the Slack requests in flight (`request()`, around each one's handling) and runs
    submitted work once none is, or `yield_seconds` after it was submitted, whichever is first."""

    def __init__(self, *, yield_seconds: float = YIELD_SECONDS, threads: int = THREADS):
        self.yield_seconds = yield_seconds
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="slack-after-ack")
        self._quiet = threading.Condition()
        self._in_flight = 0

    @contextmanager
    def request(self) -> Iterator[None]:
        """Around the handling of one Slack request, from its body read to its answer built."""
        with self._quiet:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._quiet:
                self._in_flight -= 1
                if not self._in_flight:
                    self._quiet.notify_all()

    def submit(self, work: Callable[[], None]) -> None:
        """Run `work` on a thread of its own once Slack's requests have their answers."""
        latest = time.monotonic() + self.yield_seconds
        self._executor.submit(self._when_quiet, latest, work)

    def _when_quiet(self, latest: float, work: Callable[[], None]) -> None:
        with self._quiet:
            self._quiet.wait_for(
                lambda: not self._in_flight, timeout=max(0.0, latest - time.monotonic())
            )
        try:
            work()
        except Exception as error:  # noqa: BLE001 - the executor would keep it without a word
            log.error("work after a Slack ack failed: %s", type(error).__name__)  # no values
