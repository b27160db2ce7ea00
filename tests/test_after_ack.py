"""A press's change of state runs behind the Slack requests still waiting for their answers,
and never later than its yield (handlers/slack/after_ack.py)."""

from __future__ import annotations

import threading
import time

from handlers.slack.after_ack import AfterAck


def test_a_change_waits_until_no_slack_request_is_in_flight() -> None:
    after_ack = AfterAck(yield_seconds=30)
    changed = threading.Event()
    with after_ack.request(), after_ack.request():
        after_ack.submit(changed.set)
        assert not changed.wait(0.3)
    assert changed.wait(5)


def test_a_change_runs_at_once_when_slack_is_quiet() -> None:
    after_ack = AfterAck(yield_seconds=30)
    changed = threading.Event()
    after_ack.submit(changed.set)
    assert changed.wait(5)


def test_a_steady_stream_of_requests_delays_a_change_by_its_yield_at_most() -> None:
    after_ack = AfterAck(yield_seconds=0.5)
    changed = threading.Event()
    with after_ack.request():  # never quiet while the change waits
        began = time.monotonic()
        after_ack.submit(changed.set)
        assert changed.wait(5)
        waited = time.monotonic() - began
    assert 0.4 < waited < 3
