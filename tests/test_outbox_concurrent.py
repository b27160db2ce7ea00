"""The outbox sending to many destinations at once, through the real Slack sender and client,
against a fake Slack that takes as long to answer as real Slack does.

A slow channel holds up only itself; each destination still gets its messages in the order
they were queued (a card before its update and its thread line); three replicas draining the
same queue send nothing twice.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from handlers.slack import SlackSender
from handlers.slack.client import PooledWebClient
from reviews import service
from reviews.context import Services
from reviews.messages import Message
from reviews.outbox import drain
from storage.database import Database
from tests.support.builders import NURSE, OUTREACH, make_services, on_rota, request
from tests.support.clock import FrozenClock
from tests.support.timed_slack import TimedSlack

LATENCY = 0.05  # seconds a Slack call takes here (real Slack: 0.1-0.3)
SLOW = "C0SLOW"  # a channel whose every call takes a second


@pytest.fixture
def slack() -> Iterator[TimedSlack]:
    with TimedSlack(latency=LATENCY, slow={SLOW: 1.0}) as fake:
        yield fake


def senders(fake: TimedSlack) -> dict[str, SlackSender]:
    return {"slack": SlackSender(PooledWebClient(token="xoxb-test", base_url=fake.url))}


def queue(services: Services, kind: str, address: str, text: str) -> None:
    with services.db.unit_of_work() as uow:
        uow.outbox.enqueue(
            key=f"test:{address}:{text}",
            platform="slack",
            kind=kind,
            address=address,
            payload=Message(text=text).to_json(),
            at=services.clock.now(),
        )


def arrivals(fake: TimedSlack, address: str) -> list[tuple[float, str]]:
    return [
        (arrived, str(call.body.get("text")))
        for arrived, call in list(fake.arrivals)
        if call.method == "chat.postMessage" and call.body.get("channel") == address
    ]


def test_a_slow_channel_does_not_hold_up_direct_messages(
    db: Database, clock: FrozenClock, slack: TimedSlack
) -> None:
    services = make_services(db, clock)
    for number in range(3):  # three posts a second apart: the channel is busy for 3 s
        queue(services, "channel", SLOW, f"notice {number}")
    people = [f"U0{number}" for number in range(6)]
    for person in people:
        queue(services, "direct", person, "before")
    began = time.time()
    drainer = threading.Thread(target=drain, args=(services, senders(slack)))
    drainer.start()
    time.sleep(0.5)  # mid-way through the channel's first post: new pings fall due
    queued_later = time.time()
    for person in people:
        queue(services, "direct", person, "during")
    drainer.join(timeout=30)

    channel = arrivals(slack, SLOW)
    assert [text for _, text in channel] == ["notice 0", "notice 1", "notice 2"]
    assert channel[-1][0] - began >= 3.0
    for person in people:
        [(first, before), (second, during)] = arrivals(slack, person)
        assert (before, during) == ("before", "during")
        # Before the channel's second post, let alone its last: not behind it.
        assert first - began < 1.0
        assert second - queued_later < 1.5 and second < channel[1][0]


def test_each_destination_keeps_its_order_while_all_go_at_once(
    db: Database, clock: FrozenClock, slack: TimedSlack
) -> None:
    services = make_services(db, clock)
    on_rota(db, "outreach", "Alex Carter", OUTREACH.user_id, clock.now())
    reviews = [
        service.raise_review(services=services, request=request(), by=NURSE).review
        for _ in range(3)
    ]
    for review in reviews:
        assert review.id is not None
        service.acknowledge(services=services, review_id=review.id, by=OUTREACH)
    people = [f"U0{number}" for number in range(10)]
    for number in range(5):
        for person in people:
            queue(services, "direct", person, f"{number}")
    drain(services, senders(slack))

    for person in people:
        assert [text for _, text in arrivals(slack, person)] == ["0", "1", "2", "3", "4"]
    # Every card posted before its update and its thread line, which point at it.
    cards = {
        call.answer["ts"]
        for call in slack.called("chat.postMessage")
        if call.body.get("channel") == "C0OUTREACH" and "thread_ts" not in call.body
    }
    updated = [call.body["ts"] for call in slack.called("chat.update")]
    threaded = [
        call.body["thread_ts"]
        for call in slack.called("chat.postMessage")
        if call.body.get("channel") == "C0OUTREACH" and "thread_ts" in call.body
    ]
    assert len(cards) == len(reviews)
    assert sorted(updated) == sorted(threaded) == sorted(cards)


def test_three_replicas_draining_at_once_send_nothing_twice(
    database_url: str, clock: FrozenClock, slack: TimedSlack
) -> None:
    replicas = [make_services(Database(database_url), clock) for _ in range(3)]
    people = [f"U0{number}" for number in range(12)]
    for number in range(6):
        for person in people:
            queue(replicas[0], "direct", person, f"{number}")
    for number in range(4):
        queue(replicas[0], "channel", "C0OUTREACH", f"notice {number}")
    expected = len(people) * 6 + 4

    def replica(services: Services) -> None:
        deadline = time.monotonic() + 30
        while len(slack.called("chat.postMessage")) < expected and time.monotonic() < deadline:
            drain(services, senders(slack), limit=10)
            time.sleep(0.05)

    threads = [threading.Thread(target=replica, args=(services,)) for services in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for services in replicas:
        services.db.dispose()

    sent = Counter(
        (call.body["channel"], call.body["text"]) for call in slack.called("chat.postMessage")
    )
    assert len(sent) == expected and set(sent.values()) == {1}
    for person in people:
        assert [text for _, text in arrivals(slack, person)] == [f"{n}" for n in range(6)]
    assert [text for _, text in arrivals(slack, "C0OUTREACH")] == [f"notice {n}" for n in range(4)]
