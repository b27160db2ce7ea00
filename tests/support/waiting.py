"""Waiting for a condition, never sleeping and then asserting.

The deadlines are generous on purpose: they only matter when the condition never comes, and a
machine running the suite beside benchmarks (load average 10-15 on 2 cores) can be seconds late
with work that takes milliseconds on a quiet one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T | None],
    what: str = "the condition",
    timeout: float = 30,
    *,
    ignoring: tuple[type[BaseException], ...] = (),
    every: float = 0.05,
) -> T:
    """The first true result of `check()`; AssertionError naming `what` after `timeout`
    seconds. Exceptions in `ignoring` count as a false result (a server not yet listening)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except ignoring:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what} (waited {timeout:g}s)")
        time.sleep(every)
