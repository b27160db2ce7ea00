"""Finding 17: a direct message the platform refuses for good does not count as "told". When
nobody at a level could be reached, the next level is called at once, audited and reported."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from reviews import escalation, service
from reviews.outbox import DeliveryError, OutboundItem, drain
from tests.support.builders import NURSE, make_services, on_rota, request

ALEX, SAM, IRIS = "U01ALEX", "U01SAM", "U01IRIS"
DIGEST = "C0DIGEST"


@dataclass
class RefusingSender:
    """Slack as it answers a direct message to a deactivated account: refused for good."""

    refused: set[str]
    sent: list[OutboundItem] = field(default_factory=list)

    def deliver(self, item: OutboundItem) -> str | None:
        if item.address in self.refused:
            raise DeliveryError("Slack refused: user_disabled", permanent=True)
        self.sent.append(item)
        return f"msg-{len(self.sent)}"

    def pings(self, address: str) -> list[str]:
        return [i.message.text for i in self.sent if i.address == address]


@pytest.fixture
def services(db, clock):
    start = clock.now() - timedelta(hours=1)
    on_rota(db, "outreach", "Alex Carter", ALEX, start, hours=24)
    on_rota(db, "outreach-backup", "Sam Patel", SAM, start, hours=24)
    on_rota(db, "icu-registrar", "Iris Khan", IRIS, start, hours=24)
    return make_services(db, clock)


def raise_and_deliver(services, slack) -> int:
    raised = service.raise_review(services=services, request=request(news2=""), by=NURSE)
    escalation.sweep(services)
    drain(services, {"slack": slack})
    return raised.review_id


def events(services, review_id, kind):
    with services.db.unit_of_work() as uow:
        return [json.loads(e.detail) for e in uow.events.for_review(review_id) if e.kind == kind]


def test_a_level_nobody_could_be_reached_at_moves_on_at_once(services, clock):
    slack = RefusingSender(refused={ALEX})
    review_id = raise_and_deliver(services, slack)

    # Level 0 told nobody: Alex's account refuses messages. Level 1 (due at 5m) is called now,
    # without the clock moving, and the managers are told why.
    escalation.sweep(services)
    drain(services, {"slack": slack})
    assert slack.pings(SAM) and "Escalation level 1" in slack.pings(SAM)[0]
    assert events(services, review_id, "level_unreachable") == [
        {"level": 0, "repeat": 0, "moved_on": True}
    ]
    [report] = [t for t in slack.pings(DIGEST) if "could be reached" in t]
    assert report == (
        "Nobody at escalation level 0 of RR-0001 could be reached: every direct message "
        "failed. The next level is being called now."
    )
    # Sam was reached at level 1: level 2 keeps its time.
    escalation.sweep(services)
    drain(services, {"slack": slack})
    assert slack.pings(IRIS) == []


def test_a_level_where_someone_was_reached_keeps_its_time(services, clock):
    slack = RefusingSender(refused={SAM})
    raise_and_deliver(services, slack)
    clock.advance(minutes=5)
    escalation.sweep(services)
    drain(services, {"slack": slack})  # Alex reached at level 1, Sam refused
    escalation.sweep(services)
    drain(services, {"slack": slack})
    assert slack.pings(IRIS) == [], "level 2 waits for its 10 minutes"
    assert not [t for t in slack.pings(DIGEST) if "could be reached" in t]


@dataclass
class HeldUpSender(RefusingSender):
    """Slack down for some people's direct messages (a 503 each time): held up, not refused."""

    def deliver(self, item: OutboundItem) -> str | None:
        if item.address in self.refused:
            raise DeliveryError("Slack answered 503")
        self.sent.append(item)
        return f"msg-{len(self.sent)}"


def test_a_level_whose_only_ping_is_held_up_moves_on_once_at_about_two_minutes(services, clock):
    slack = HeldUpSender(refused={ALEX})
    review_id = raise_and_deliver(services, slack)
    for _ in range(150):  # five minutes of the bot's ticks, two seconds apart
        clock.advance(seconds=2)
        escalation.sweep(services)
        drain(services, {"slack": slack})
        if slack.pings(SAM):
            break
    # Alex's level-0 ping has not gone: Sam (level 1, due at 5m) is called at about 2 minutes.
    assert slack.pings(SAM) and "Escalation level 1" in slack.pings(SAM)[0]
    waited = clock.now() - raised_at(services, review_id)
    assert timedelta(minutes=1, seconds=30) < waited < timedelta(minutes=2, seconds=30), waited
    [report] = [t for t in slack.pings(DIGEST) if "could be reached" in t]
    assert report == (
        "Nobody at escalation level 0 of RR-0001 could be reached: no direct message has gone "
        "(each failed, or is held up and still being tried). The next level is being called now."
    )
    # Alex's ping is still tried, and fails for good a day later: said once, not again.
    clock.advance(hours=25)
    escalation.sweep(services)
    drain(services, {"slack": slack})
    assert events(services, review_id, "level_unreachable") == [
        {"level": 0, "repeat": 0, "moved_on": True}
    ]


def test_a_second_request_whose_ping_waits_behind_a_held_up_one_moves_on_as_soon(services, clock):
    """Alex's second ping waits, untried, behind his first, held up: his second request's
    level is no more reached than the first's, and its next level comes as soon after it."""
    slack = HeldUpSender(refused={ALEX})
    raise_and_deliver(services, slack)
    ticks(services, slack, clock, seconds=30)
    second = raise_and_deliver(services, slack)
    for _ in range(150):  # five minutes
        ticks(services, slack, clock, seconds=2)
        if any("RR-0002" in text for text in slack.pings(SAM)):
            break
    [called] = [text for text in slack.pings(SAM) if "RR-0002" in text]
    assert called.startswith("Escalation level 1: RR-0002")
    waited = clock.now() - raised_at(services, second)
    assert timedelta(minutes=1, seconds=30) < waited < timedelta(minutes=3, seconds=30), waited
    assert events(services, second, "level_unreachable") == [
        {"level": 0, "repeat": 0, "moved_on": True}
    ]


@dataclass
class SlowingSender(HeldUpSender):
    """Alex's Slack down (503s); Sam's asking the bot to wait five minutes (429): throttled,
    which is Slack up and pacing the bot, not a ping held up."""

    def deliver(self, item: OutboundItem) -> str | None:
        if item.address == SAM:
            raise DeliveryError("Slack answered 429", retry_after=300, throttled=True)
        return super().deliver(item)


def test_a_level_where_one_ping_is_only_paced_by_slack_keeps_its_time(services, clock):
    slack = SlowingSender(refused={ALEX})
    review_id = raise_and_deliver(services, slack)
    # Level 0 (Alex, held up) moves on at about 2 minutes; level 1 is Alex (waiting behind his
    # first ping) and Sam (paced by Slack): not a level that reached nobody, so level 2 (Iris)
    # keeps its 10 minutes.
    ticks(services, slack, clock, seconds=8 * 60)
    assert events(services, review_id, "level_unreachable") == [
        {"level": 0, "repeat": 0, "moved_on": True}
    ]
    assert slack.pings(IRIS) == []


@dataclass
class PacingSender(RefusingSender):
    """Slack up, pacing Alex's pings in a surge: 429 with a short Retry-After (throttled)."""

    def deliver(self, item: OutboundItem) -> str | None:
        if item.address in self.refused:
            raise DeliveryError("Slack answered 429", retry_after=5, throttled=True)
        self.sent.append(item)
        return f"msg-{len(self.sent)}"


def test_a_ping_slack_paces_for_minutes_does_not_move_the_level_on(services, clock):
    """A review found a short Retry-After bringing 8 tries, and the next level, within 40 s."""
    slack = PacingSender(refused={ALEX})
    review_id = raise_and_deliver(services, slack)
    ticks(services, slack, clock, seconds=4 * 60)
    assert events(services, review_id, "level_unreachable") == []
    assert slack.pings(SAM) == []


@pytest.mark.postgres
def test_two_replicas_finding_nobody_reached_at_once_record_it_once(services, clock):
    """Two drainers (replicas, or the sender process and its standby) find the level's pings
    held up at the same moment: both read that nothing was said before either says it."""
    if not services.db.engine.url.drivername.startswith("postgresql"):
        pytest.skip("SQLite has one writer: two transactions cannot interleave")
    review_id = raise_and_deliver(services, RefusingSender(refused=set()))
    barrier = threading.Barrier(2, timeout=10)

    def replica() -> None:
        with services.db.unit_of_work() as uow:
            read, first = uow.events.for_review, [True]

            def for_review(review: int):
                events = list(read(review))
                if first.pop() if first else False:
                    barrier.wait()  # both have read the events before either writes
                return events

            uow.events.for_review = for_review
            escalation.nobody_reached(
                uow, services, review_id, 0, 0, clock.now(), held_up=lambda _row: True
            )

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(events(services, review_id, "level_unreachable")) == 1


def ticks(services, slack, clock, *, seconds):
    """The bot's sweep and outbox for `seconds`, two seconds apart."""
    for _ in range(seconds // 2):
        clock.advance(seconds=2)
        escalation.sweep(services)
        drain(services, {"slack": slack})


def raised_at(services, review_id):
    with services.db.unit_of_work() as uow:
        review = uow.reviews.get(review_id)
        assert review is not None
        return review.raised_at.replace(tzinfo=services.clock.now().tzinfo)


@dataclass
class RevokedSender(RefusingSender):
    """Slack refusing the bot's token: no message goes to anyone until IT fixes it."""

    def deliver(self, item: OutboundItem) -> str | None:
        raise DeliveryError("Slack refused the token: token_revoked", credentials=True)


def test_a_level_whose_pings_wait_for_refused_credentials_keeps_its_time(services, clock):
    """The limit docs/escalation.md owns: messages held while the platform refuses the bot are
    uncounted, never held up, so the ladder climbs on its own times, not every 2 minutes."""
    slack = RevokedSender(refused=set())
    review_id = raise_and_deliver(services, slack)
    ticks(services, slack, clock, seconds=4 * 60 + 50)
    assert events(services, review_id, "level_unreachable") == []
    assert [e["level"] for e in events(services, review_id, "escalated")] == [0]
    ticks(services, slack, clock, seconds=20)  # level 1 falls due at 5 minutes
    assert [e["level"] for e in events(services, review_id, "escalated")] == [0, 1]
