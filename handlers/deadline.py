"""Answering a person in time when the database is slow.

Slack drops a form's answer after 3 s and Teams an invoke's soon after, leaving the person with a
generic error and no idea whether the outreach team has their request. So a change is made on a
daemon thread and waited for at most DEADLINE seconds; past that the person is told NOT
CONFIRMED with FALLBACK_CONTACT, and what became of the change is logged when it ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from handlers.one_at_a_time import in_background

log = logging.getLogger(__name__)

DEADLINE = 2.0  # seconds to store a change before answering; Slack waits 3
T = TypeVar("T")


class NotConfirmed(Exception):
    """The change did not finish in time: it may still be recorded, or may not."""


def within_deadline(
    work: Callable[[], T],
    what: str,
    seconds: float = DEADLINE,
    *,
    longer: Callable[[], bool] = lambda: False,
    more: float = 0.0,
) -> T:
    """`work()`'s result, or NotConfirmed after `seconds` (and `more` seconds after that, if
    `longer()` says then that the wait is worth it); `work`'s own errors propagate. `what`
    names the change in the logs ("request from Teams"), never its contents."""
    future = in_background(work, name="change")
    try:
        return future.result(timeout=seconds)
    except TimeoutError:
        pass
    try:
        if more and longer():
            return future.result(timeout=more)
        raise TimeoutError
    except TimeoutError:
        log.error("%s not confirmed within %.1f s", what, seconds)
        future.add_done_callback(lambda done: _log_late_outcome(done, what))
        raise NotConfirmed(what) from None


def _log_late_outcome(done: Future[T], what: str) -> None:
    """What became of a change the person was told was NOT CONFIRMED (for the ops team)."""
    error = done.exception()
    if error is None:
        # A review's reference; a check-in that raised none has None.
        reference = getattr(done.result(), "reference", None) or ""
        log.warning("%s %s was recorded after NOT CONFIRMED", what, reference)
    else:
        log.error("%s NOT CONFIRMED then NOT recorded: %s", what, type(error).__name__)
