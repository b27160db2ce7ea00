"""A platform down for minutes or hours: what is queued goes once it is back, in order, once.

Slack answering 503 for ten minutes, a paging gateway unreachable for three: the card and the
pings go when it is back, the digest channel hears once that they are held up, and nothing is
failed. A message the platform refuses while others go is still failed (it would hold up its
channel for good), and one still not delivered a day later is given up and reported.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from handlers.pager.gateway import GatewaySender
from handlers.slack import SlackSender
from handlers.slack.client import PooledWebClient
from reviews import digest, escalation, service
from reviews.context import Services
from reviews.digest_figures import Window
from reviews.messages import Message
from reviews.outbox import ALARM_ATTEMPTS, DeliveryError, OutboundItem, Sender, drain
from reviews.policy import parse_policy
from storage.database import Database
from storage.tables import Outbox, ReviewEvent
from tests.support.builders import NURSE, RecordingSender, make_services, on_rota, request
from tests.support.clock import FrozenClock
from tests.support.fake_slack import FakeSlack
from tests.support.fake_texts import PAGER_SECRET, FakePager

CHANNEL, DIGEST = "C0OUTREACH", "C0DIGEST"
ALEX, SAM = "U01ALEX", "U01SAM"
HELD_UP = "has not gone after"


@pytest.fixture
def services(db: Database, clock: FrozenClock) -> Services:
    start = clock.now() - timedelta(hours=1)
    on_rota(db, "outreach", "Alex Carter", ALEX, start, hours=48)
    on_rota(db, "outreach-backup", "Sam Patel", SAM, start, hours=48)
    # Every role held: a role nobody holds changes the ladder's times, which is not this file's.
    on_rota(db, "icu-registrar", "Iris Khan", "U01IRIS", start, hours=48)
    on_rota(db, "site-manager", "Mo Reid", "U01MO", start, hours=48)
    return make_services(db, clock)


def run(services: Services, senders: dict[str, Any], clock: FrozenClock, minutes: float) -> None:
    """The bot's ticks for `minutes`, two seconds apart: the sweep, then the outbox."""
    for _ in range(int(minutes * 30)):
        clock.advance(seconds=2)
        escalation.sweep(services)
        drain(services, senders)


def in_slack(fake: FakeSlack, conversation: str) -> list[str]:
    with fake._lock:
        return [m["text"] for m in fake.messages.get(conversation, []) if not m.get("thread_ts")]


def slack_back(fake: FakeSlack) -> None:
    with fake._lock:
        fake.failures.clear()


def texts(sender: RecordingSender, address: str) -> list[str]:
    return [item.message.text for item in sender.to(address)]


def states(db: Database) -> dict[str, str]:
    with db.unit_of_work() as uow:
        return {row.key: row.state for row in uow.session.exec(select(Outbox)).all()}


def test_after_a_ten_minute_slack_outage_the_card_and_pings_go_once_in_order(
    services: Services, fake: FakeSlack, clock: FrozenClock
) -> None:
    slack = {"slack": SlackSender(PooledWebClient(token="xoxb-test", base_url=fake.url))}
    fake.fail("chat.postMessage", status=503, times=1_000_000)  # Slack is down
    service.raise_review(services=services, request=request(news2=""), by=NURSE)
    run(services, slack, clock, minutes=10)
    assert in_slack(fake, CHANNEL) == [] and "failed" not in states(services.db).values()

    slack_back(fake)
    run(services, slack, clock, minutes=2)
    cards = [text for text in in_slack(fake, CHANNEL) if text.startswith("Rapid review")]
    assert len(cards) == 1 and "RR-0001" in cards[0]
    # Alex's pings, each once, in the order the ladder called them: level 0, then level 1.
    alex = in_slack(fake, "D01ALEX")
    assert alex[0].startswith("New rapid review RR-0001") and len(alex) == len(set(alex)) == 2
    assert alex[1].startswith("Escalation level 1: RR-0001")
    assert "failed" not in states(services.db).values()
    # Nobody could be reached at each level in turn, so each called the next at about 2
    # minutes rather than at its 5 (the last level repeats on its own time).
    with services.db.unit_of_work() as uow:
        review = uow.reviews.get(1)
        assert review is not None
        unreached = [
            (event.at - review.raised_at, json.loads(event.detail))
            for event in uow.session.exec(select(ReviewEvent)).all()
            if event.kind == "level_unreachable"
        ]
    assert [detail for _, detail in unreached] == [
        {"level": level, "repeat": 0, "moved_on": level < 3} for level in range(4)
    ]
    assert all(at < timedelta(minutes=2.5 * (n + 1)) for n, (at, _) in enumerate(unreached))
    # The managers heard about each held-up message once (about 2 minutes in), not each retry.
    # The card and the first ping of each level (Alex, Sam, Iris, Mo) were each tried 8 times;
    # Alex's level-1 ping waited behind his first, and the alarms held up raise none of their
    # own.
    held_up = [text.split(":")[0] for text in in_slack(fake, DIGEST) if HELD_UP in text]
    assert sorted(held_up) == [
        f"A card message on slack about RR-0001 to {CHANNEL} has not gone after 8 attempts",
        *["A direct message on slack about RR-0001 has not gone after 8 attempts"] * 4,
    ]
    # Each alarm was raised about two minutes after its message was queued.
    with services.db.unit_of_work() as uow:
        queued = {row.id: row.created_at for row in uow.session.exec(select(Outbox)).all()}
        alarms = uow.session.exec(select(Outbox).where(col(Outbox.key).startswith("delayed:")))
        waited = [row.created_at - queued[int(row.key.split(":")[1])] for row in alarms]
    assert len(waited) == 5 and all(wait < timedelta(minutes=2, seconds=10) for wait in waited)


def test_a_paging_gateway_down_for_three_minutes_still_pages_level_0_once(
    db: Database, clock: FrozenClock, pager: FakePager
) -> None:
    policy = """
    [[levels]]
    after = "0s"
    notify = ["outreach"]
    [[levels]]
    after = "10m"
    notify = ["outreach", "outreach-backup"]
    repeat_every = "24h"
    [fallback]
    after = "2m"
    [urgency.standard]
    news2_at_least = 0
    attend_within = "1h"
    """
    alex = on_rota(db, "outreach", "Alex Carter", ALEX, clock.now() - timedelta(hours=1))
    with db.unit_of_work() as uow:
        stored = uow.rota.staff(alex.id or 0)
        assert stored is not None
        stored.pager = "BLEEP-2345"
    services = make_services(db, clock, policy=parse_policy(tomllib.loads(policy)))
    services = dataclasses.replace(services, texting=("pager",))
    gateway = GatewaySender(pager.url + "/page", PAGER_SECRET)
    senders: dict[str, Sender] = {"slack": RecordingSender(), "pager": gateway}
    service.raise_review(services=services, request=request(news2=""), by=NURSE)
    drain(services, senders)  # Alex's direct message goes; nobody acknowledges it
    working, gateway.url = gateway.url, "http://127.0.0.1:9/page"  # the gateway restarts
    run(services, senders, clock, minutes=3)  # the page falls due at 2 minutes
    assert pager.pages() == []
    gateway.url = working
    run(services, senders, clock, minutes=2)
    assert [(page["to"], page["reference"], page["level"]) for page in pager.pages()] == [
        ("BLEEP-2345", "RR-0001", 0)
    ]


@dataclasses.dataclass
class Refusing(RecordingSender):
    """Slack, up, answering 500 to one message however often it is tried."""

    refused: str = ""

    def deliver(self, item: OutboundItem) -> str | None:
        if item.message.text == self.refused:
            raise DeliveryError("Slack 500 (internal_error)", uncertain=True)
        return super().deliver(item)


def test_a_message_slack_keeps_refusing_while_others_go_fails_and_frees_its_channel(
    services: Services, clock: FrozenClock
) -> None:
    with services.db.unit_of_work() as uow:
        for number, text in enumerate(("broken", "next")):
            uow.outbox.enqueue(
                key=f"test:{number}",
                platform="slack",
                kind="channel",
                address=CHANNEL,
                payload=Message(text=text).to_json(),
                at=clock.now(),
            )
    slack = Refusing(refused="broken")
    service.raise_review(services=services, request=request(news2=""), by=NURSE)
    run(services, {"slack": slack}, clock, minutes=4)
    # Later messages have gone for under BACK_FOR: it may be Slack still coming back.
    assert states(services.db)["test:0"] == "pending"
    run(services, {"slack": slack}, clock, minutes=5)
    assert states(services.db)["test:0"] == "failed"
    shown = [item.message.text for item in slack.to(CHANNEL)]
    assert "next" in shown and any(text.startswith("Rapid review") for text in shown)
    [report] = [text for text in texts(slack, DIGEST) if "could not be" in text]
    # Failed once Slack was seen taking later messages for 5 minutes and within the last one
    # (the alarm that it was held up, after 8 attempts, was one of them).
    assert report.startswith(f"A channel message on slack to {CHANNEL} could not be delivered")
    assert report.endswith(
        "attempts while later messages on slack went for 5 minutes: Slack 500 (internal_error)"
    )


def test_a_message_still_not_delivered_after_a_day_is_failed_and_reported(
    services: Services, clock: FrozenClock
) -> None:
    down = RecordingSender(failures=[DeliveryError("network: URLError")] * 1000)
    service.raise_review(services=services, request=request(news2=""), by=NURSE)
    for _ in range(25):
        clock.advance(hours=1)
        drain(services, {"slack": down})
    assert states(services.db)["card:1:slack"] == "failed"
    clock.advance(minutes=1)  # the digest channel's own held-up alarms are due again
    back = RecordingSender()
    drain(services, {"slack": back})
    reports = [text for text in texts(back, DIGEST) if "could not be" in text]
    assert any(
        text.startswith("A card message on slack about RR-0001 to C0OUTREACH could not be ")
        and text.endswith("attempts over 24 hours: network: URLError")
        for text in reports
    ), reports


def test_the_digest_counts_messages_held_up_by_an_outage_as_held_up_not_failed(
    services: Services, clock: FrozenClock
) -> None:
    down = RecordingSender(failures=[DeliveryError("Slack 503")] * 1000)
    service.raise_review(services=services, request=request(news2=""), by=NURSE)
    for _ in range(3 * ALARM_ATTEMPTS):  # Slack down for 24 minutes
        drain(services, {"slack": down})
        clock.advance(minutes=1)
    back = RecordingSender()
    drain(services, {"slack": back})
    assert [item.kind for item in back.to(CHANNEL)] == ["card"]
    assert set(states(services.db).values()) == {"sent"}
    with services.db.unit_of_work() as uow:
        events = uow.session.exec(select(ReviewEvent.kind)).all()
    # The card and Alex's ping were each held up once, however often they were tried.
    assert events.count("delivery_delayed") == 2 and "delivery_failed" not in events
    with services.db.unit_of_work() as uow:
        day = digest.gather(uow, Window(clock.now() - timedelta(hours=1), clock.now()))
    assert (day.delivery_delays, day.delivery_failures) == (2, 0)


def test_a_card_held_up_by_an_outage_survives_one_more_503_as_slack_comes_back(
    services: Services, fake: FakeSlack, clock: FrozenClock
) -> None:
    """Slack came back unevenly: the card, held up through the outage, met one more 503 while
    other messages went, and was failed for good; the outreach channel never showed it."""
    slack = {"slack": SlackSender(PooledWebClient(token="xoxb-test", base_url=fake.url))}
    fake.fail("chat.postMessage", status=503, times=1_000_000)
    service.raise_review(services=services, request=request(news2=""), by=NURSE)
    run(services, slack, clock, minutes=10)
    slack_back(fake)
    fake.fail("chat.postMessage", status=503, times=1, channel=CHANNEL)  # one more, there
    run(services, slack, clock, minutes=5)
    cards = [text for text in in_slack(fake, CHANNEL) if text.startswith("Rapid review")]
    assert len(cards) == 1 and "failed" not in states(services.db).values()


def test_a_message_found_to_have_arrived_ends_the_outage_its_lost_answer_began(
    services: Services, fake: FakeSlack, clock: FrozenClock
) -> None:
    """Slack posted a message and answered 500; the next attempt found it there. Slack stayed
    "cannot be reached", and a family was asked to phone as well, until another message went."""
    slack = {"slack": SlackSender(PooledWebClient(token="xoxb-test", base_url=fake.url))}
    with services.db.unit_of_work() as uow:
        uow.outbox.enqueue(
            key="test:1",
            platform="slack",
            kind="channel",
            address=CHANNEL,
            payload=Message(text="hello").to_json(),
            at=clock.now(),
        )
    fake.fail("chat.postMessage", status=500, lands=True)
    drain(services, slack)
    assert services.health.all_down(["slack"])
    clock.advance(seconds=2)
    drain(services, slack)  # the look finds it: sent, not posted twice
    assert len(fake.called("chat.postMessage")) == 1
    assert services.health.warnings() == [] and not services.health.all_down(["slack"])


def test_a_held_up_alarm_raises_no_alarm_about_itself(
    services: Services, clock: FrozenClock
) -> None:
    """A cover-gap alarm, held up behind the outage it sits in, was alarmed about in turn: the
    managers heard of it only after both had gone."""
    with services.db.unit_of_work() as uow:
        for shift in uow.rota.shifts_at("outreach", clock.now()):
            shift.end = clock.now()  # nobody holds the bleep: a cover gap at level 0
    down = RecordingSender(failures=[DeliveryError("Slack 503", uncertain=True)] * 100_000)
    service.raise_review(services=services, request=request(news2=""), by=NURSE)
    run(services, {"slack": down}, clock, minutes=10)
    back = RecordingSender()
    run(services, {"slack": back}, clock, minutes=2)
    assert [t for t in texts(back, DIGEST) if f"to {DIGEST}" in t] == []
    assert any(t.startswith("Cover gap: nobody holds outreach") for t in texts(back, DIGEST))
