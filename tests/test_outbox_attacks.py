"""Hostile review of the outbox's ordering rules: scenarios in which a message could be sent
twice, out of order, lost or stuck. Each test here failed before the fix beside it."""

from __future__ import annotations

import threading
import time

import pytest
from sqlmodel import select

from handlers.slack.blocks import escape, render
from reviews import notify
from reviews.messages import Message
from reviews.outbox import CLAIM_EVERY, LEASE, drain
from storage.tables import Outbox
from tests.support.builders import (
    HeldSender,
    RecordingSender,
    another_replica_ticks_past_the_lease,
    make_services,
)


@pytest.fixture
def services(db, clock):
    return make_services(db, clock)


def queue(services, address: str, text: str, key: str = "") -> None:
    with services.db.unit_of_work() as uow:
        notify.to_user(
            uow,
            platform="slack",
            user_id=address,
            key=key or f"test:{address}:{text}",
            message=Message(text=text),
            at=services.clock.now(),
        )


def states(services) -> dict[str, str]:
    with services.db.unit_of_work() as uow:
        return {row.key: row.state for row in uow.session.exec(select(Outbox)).all()}


def test_an_unreadable_message_among_those_going_together_strands_none_after_it(
    services, clock
) -> None:
    # A bleep-holder fallen behind: their messages go as one. One of them cannot be read.
    # The first went on its own; the rest must not be left "sending" with nobody sending
    # them (they would wait out the lease, and each lease one more of them goes).
    for text in ("one", "two", "three", "four"):
        queue(services, "U01ALEX", text)
    with services.db.unit_of_work() as uow:
        broken = uow.session.exec(select(Outbox).where(Outbox.key == "test:U01ALEX:two")).one()
        broken.payload = "not json"
    clock.advance(seconds=3)
    slack = RecordingSender()
    drain(services, {"slack": slack})
    drain(services, {"slack": slack})  # the next tick, no time later
    sent = [item.message.text for item in slack.to("U01ALEX")]
    assert "one" in sent[0] and all(text in "\n".join(sent[1:]) for text in ("three", "four"))
    assert {key: state for key, state in states(services).items() if "U01ALEX" in key} == {
        "test:U01ALEX:one": "sent",
        "test:U01ALEX:two": "failed",
        "test:U01ALEX:three": "sent",
        "test:U01ALEX:four": "sent",
    }


def test_a_raiser_fallen_behind_sees_every_line_of_their_messages_together(services, clock):
    # A ward nurse raised eight requests; each was cancelled with a reason of up to 500
    # characters. Their messages fell behind and went as one: Slack shows a text section's
    # first 3,000 characters, so lines past that would be marked sent yet never seen.
    reason = "Patient transferred to the coronary care unit & family informed; " * 7
    for number in range(1, 9):
        text = f"Your request RR-000{number}: Cancelled by Sam: {reason}"
        queue(services, "U0NURSE", text, key=f"test:raiser:{number}")
    clock.advance(seconds=3)
    slack = RecordingSender()
    drain(services, {"slack": slack})
    drain(services, {"slack": slack})
    shown = [
        block["text"]["text"]
        for item in slack.to("U0NURSE")
        for block in render(item.message)
        if block["type"] == "section"
    ]
    for number in range(1, 9):
        line = escape(f"Your request RR-000{number}: Cancelled by Sam: {reason}")
        assert any(line in text for text in shown), f"RR-000{number} not shown"
    assert set(states(services).values()) == {"sent"}


def test_a_drainer_never_claims_again_a_message_it_is_sending_itself(services, clock) -> None:
    # The drain's loop renews its leases every RENEW_EVERY, between claims; a claim that waited
    # long for the database (SQLite's writer lock, 30 s at most) finds its own lease run out.
    # It must not take its own message again: a second worker would send it a second time.
    queue(services, "U1", "ping")
    slow = HeldSender()
    first = threading.Thread(target=drain, args=(services, {"slack": slow}))
    first.start()
    assert slow.sending.wait(timeout=10)
    clock.advance(LEASE.total_seconds() + 1)  # the loop's next claim comes before its renewal
    time.sleep(3 * CLAIM_EVERY)
    slow.release.set()
    first.join(timeout=30)
    assert [item.message.text for item in slow.to("U1")] == ["ping"]


def test_a_drain_stopped_by_an_error_keeps_its_sends_under_lease_until_they_end(
    services, clock, monkeypatch
) -> None:
    # The database fails under a drain (a failover) while a send is on its way to Slack: the
    # drain stops, waiting for that send to end, and its hold must outlive the wait, or another
    # replica sends the same message again meanwhile.
    from reviews import outbox
    from storage.database import DatabaseUnavailable

    monkeypatch.setattr(outbox, "RENEW_EVERY", 0.05)
    claims = 0
    real_claim = outbox._claim

    def failing_after_the_first(*args, **kwargs):
        # Only for the first drain: the other replica below meets a working database.
        nonlocal claims
        if threading.current_thread().name == "failing-drain":
            claims += 1
            if claims > 1:
                raise DatabaseUnavailable("OperationalError")
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(outbox, "_claim", failing_after_the_first)
    slow = HeldSender()

    def drain_until_it_fails() -> None:
        with pytest.raises(DatabaseUnavailable):
            drain(services, {"slack": slow})

    queue(services, "U1", "ping")
    first = threading.Thread(target=drain_until_it_fails, name="failing-drain")
    first.start()
    assert slow.sending.wait(timeout=10)
    other = another_replica_ticks_past_the_lease(services, clock)
    slow.release.set()
    first.join(timeout=30)
    assert other.sent == [] and [item.message.text for item in slow.to("U1")] == ["ping"]
