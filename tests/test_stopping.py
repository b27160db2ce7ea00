"""A bot stopped while it sends (SIGTERM: a rolling restart, a deploy, systemd stopping it).

Real processes against a slow fake Slack. What the stopped bot had begun is recorded as sent;
what it had claimed but not begun is handed back at once for the next copy, not held until
its lease runs out; and it leaves quietly, without a traceback in the on-call's log.
"""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import col, select

from reviews import notify
from reviews.clock import SystemClock
from reviews.messages import Message
from storage.database import Database
from storage.tables import Outbox
from tests.support.fake_slack import FakeSlack
from tests.support.process import BotProcess, slack_environment
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

PEOPLE = [f"U0STOP{n:03d}" for n in range(60)]


def queue_a_message_each(database_url: str) -> None:
    db = Database(database_url)
    try:
        with db.unit_of_work() as uow:
            for user in PEOPLE:
                notify.to_user(
                    uow,
                    platform="slack",
                    user_id=user,
                    key=f"stop-drill:{user}",
                    message=Message(text="A message for the stop drill"),
                    at=SystemClock().now(),
                )
    finally:
        db.dispose()


def claimed(database_url: str) -> int:
    """Messages a drainer holds under its lease (claimed, not yet sent or handed back)."""
    db = Database(database_url)
    try:
        with db.unit_of_work() as uow:
            rows = uow.session.exec(select(Outbox).where(col(Outbox.key).startswith("stop-drill:")))
            return sum(1 for row in rows if row.state == "sending")
    finally:
        db.dispose()


@pytest.mark.parametrize(
    ("database_url", "sender_process"),
    [
        ("sqlite", "off"),  # SQLite always sends from the bot's one process
        pytest.param("postgres", "off", marks=pytest.mark.postgres),
        pytest.param("postgres", "on", marks=pytest.mark.postgres),  # its sender sends
    ],
    indirect=["database_url"],
)
def test_a_bot_stopped_mid_drain_hands_back_what_it_had_not_begun_and_leaves_quietly(
    database_url: str, sender_process: str
) -> None:
    queue_a_message_each(database_url)
    with FakeSlack(latency=0.3) as fake:
        env = slack_environment(fake.url, database_url, SENDER_PROCESS=sender_process)
        first = BotProcess(env=env)
        try:
            fake.wait_for("chat.postMessage", count=10, timeout=20)
        finally:
            code = first.stop()
        log = "".join(first.log)
        assert code == 0
        assert "Traceback" not in log and "failed; will retry" not in log
        sent_before = len(delivered(fake))
        assert sent_before < len(PEOPLE), "the stop came after the drain had ended"
        # Nothing is left under the stopped bot's lease (15 s) for the next copy to wait out.
        assert claimed(database_url) == 0

        second = BotProcess(env=env)
        try:
            eventually(lambda: len(delivered(fake)) >= len(PEOPLE), "every message sent", 30)
        finally:
            second.stop()
        counts = delivered(fake)
        assert set(counts) == set(PEOPLE)
        assert max(counts.values()) == 1, "a message the first bot had begun was sent again"


def delivered(fake: FakeSlack) -> Counter[str]:
    return Counter(
        str(call.body.get("channel"))
        for call in fake.called("chat.postMessage")
        if str(call.body.get("channel")) in PEOPLE
    )
