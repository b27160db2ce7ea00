"""A press's change of state runs behind the Slack requests still waiting for their answers,
and never later than its yield (handlers/slack/after_ack.py)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from slack_sdk import WebClient

from handlers.slack.after_ack import AfterAck
from handlers.slack.people import tell
from tests.support.waiting import eventually


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


def test_work_that_fails_after_the_ack_is_logged_not_lost_without_a_word(
    caplog: pytest.LogCaptureFixture,
) -> None:
    after_ack = AfterAck(yield_seconds=30)
    ran = threading.Event()

    def failing() -> None:
        ran.set()
        raise TimeoutError("Slack did not answer")

    after_ack.submit(failing)
    assert ran.wait(5)
    eventually(lambda: "work after a Slack ack failed: TimeoutError" in caplog.text)


def test_a_presser_is_not_told_privately_when_slack_cannot_be_reached_and_that_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as closed:  # a port with nothing listening: connection refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = WebClient(token="xoxb-test", base_url=f"http://127.0.0.1:{port}/api/", timeout=2)
    tell(client, user_id="U01ALEX", channel_id="C0OUTREACH", text="Not on the rota.")
    assert "could not tell U01ALEX privately" in caplog.text
