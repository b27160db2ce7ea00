"""A surge across three replicas with one killed by SIGKILL halfway (figures: bench/surge.py).

Slack limits the outreach channel to about a post a second, so cards queue for a while; the
direct messages must not queue behind them. Nothing a nurse was told was raised may be lost,
every stored request gets its card and its first direct message, and nothing goes twice
(except, at worst, a message the killed replica had sent but not yet marked: counted).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.surge import run_surge

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# Enough that the channel's one post a second is really reached (cards queue for about 20 s)
# while the kill lands mid-surge; bench/surge.py runs the 500 the issue asks for.
REQUESTS = 20


def test_a_surge_with_a_replica_killed_loses_nothing_and_sends_nothing_twice(
    postgres_url: str, tmp_path: Path
) -> None:
    surge = run_surge(postgres_url, tmp_path, count=REQUESTS, over=10, kill=True, wait=180)
    assert surge.answers["NOT CONFIRMED"] == 0
    # Requests in flight to the killed replica get no answer: Slack shows the nurse an error.
    assert surge.answers["raised"] + surge.answers["no answer"] == REQUESTS
    assert surge.answers["raised"] >= REQUESTS - 3
    assert surge.told_raised <= set(surge.stored)
    assert set(surge.first_dm) == set(surge.stored)  # every request's first direct message
    assert set(surge.card_copies) == set(surge.stored)  # and its card
    assert surge.sent_twice <= surge.held_at_kill
    assert surge.rate_limited > 0  # the channel's limit was really reached
