"""A message Slack took whose answer never came back is not posted again.

The outbox sends, then records that it sent; between the two the answer can be lost (the
connection dropped, a 5xx after Slack had posted) or the drainer killed. Each message carries
metadata naming its outbox rows, and the attempt after such a loss first reads the conversation
(or the thread) for it. Run through the real drain, Slack sender and client against the fake
Slack, on SQLite and PostgreSQL. The kill of a real bot process is in tests/test_replicas.py.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlmodel import col, select

from handlers.slack import SlackSender
from handlers.slack.client import PooledWebClient
from reviews import service
from reviews.context import Services
from reviews.messages import Message
from reviews.outbox import LEASE, LOOK_ATTEMPTS, OutboundItem, drain, outbox_tag
from storage.database import Database
from storage.migrate import alembic_config
from storage.tables import Outbox
from tests.support.builders import NURSE, OUTREACH, make_services, on_rota, request
from tests.support.clock import FrozenClock
from tests.support.fake_slack import BOT_ID, FakeSlack

CHANNEL = "C0OUTREACH"
PERSON = "U01SAM"


@pytest.fixture
def services(db: Database, clock: FrozenClock) -> Services:
    on_rota(db, "outreach", "Alex Carter", OUTREACH.user_id, clock.now() - timedelta(hours=1))
    return make_services(db, clock)


def senders(fake: FakeSlack) -> dict[str, SlackSender]:
    return {"slack": SlackSender(PooledWebClient(token="xoxb-test", base_url=fake.url))}


def in_slack(fake: FakeSlack, conversation: str, *, thread: bool = False) -> list[dict[str, Any]]:
    """The messages Slack holds in `conversation`: top-level ones, or thread replies."""
    with fake._lock:
        kept = list(fake.messages.get(conversation, []))
    return [m for m in kept if bool(m.get("thread_ts")) is thread]


def cards(fake: FakeSlack) -> list[dict[str, Any]]:
    return [m for m in in_slack(fake, CHANNEL) if m["text"].startswith("Rapid review")]


def settle(services: Services, fake: FakeSlack, clock: FrozenClock) -> None:
    """Drain, then drain again once any retry is due."""
    drain(services, senders(fake))
    clock.advance(60)
    drain(services, senders(fake))


def queue_for_person(services: Services, clock: FrozenClock, count: int) -> None:
    with services.db.unit_of_work() as uow:
        for number in range(count):
            uow.outbox.enqueue(
                key=f"test:{number}",
                platform="slack",
                kind="direct",
                address=PERSON,
                payload=Message(text=f"message {number}").to_json(),
                at=clock.now(),
            )


@pytest.mark.parametrize("status", [0, 502], ids=["connection-dropped", "slack-502"])
def test_a_card_slack_took_but_whose_answer_was_lost_is_posted_once(
    services: Services, fake: FakeSlack, clock: FrozenClock, status: int
) -> None:
    review = service.raise_review(services=services, request=request(), by=NURSE).review
    fake.fail("chat.postMessage", status=status, lands=True, channel=CHANNEL)
    settle(services, fake, clock)
    assert len(cards(fake)) == 1, "the card was posted again after its answer was lost"
    # The card found is the card: the team's presses change it, not a stray second one.
    service.acknowledge(services=services, review_id=review.id or 0, by=OUTREACH)
    drain(services, senders(fake))
    updated = fake.wait_for("chat.update")[-1].body
    assert (updated["channel"], updated["ts"]) == (CHANNEL, cards(fake)[0]["ts"])


def test_a_card_that_never_arrived_is_looked_for_then_posted(
    services: Services, fake: FakeSlack, clock: FrozenClock
) -> None:
    service.raise_review(services=services, request=request(), by=NURSE)
    fake.fail("chat.postMessage", status=502, channel=CHANNEL)  # refused, not posted
    settle(services, fake, clock)
    assert len(fake.called("conversations.history")) == 1
    assert len(cards(fake)) == 1


def test_a_ping_whose_answer_was_lost_reaches_the_person_once(
    services: Services, fake: FakeSlack, clock: FrozenClock
) -> None:
    service.raise_review(services=services, request=request(), by=NURSE)
    fake.fail("chat.postMessage", status=0, lands=True, channel=OUTREACH.user_id)
    settle(services, fake, clock)
    # Slack posts a message to a user id into that person's conversation with the bot.
    conversation = "D" + OUTREACH.user_id[1:]
    assert [m["text"][:17] for m in in_slack(fake, conversation)] == ["New rapid review "]
    assert fake.called("conversations.open"), "the person's conversation is read, not the user"


def test_a_thread_line_whose_answer_was_lost_is_posted_once(
    services: Services, fake: FakeSlack, clock: FrozenClock
) -> None:
    review = service.raise_review(services=services, request=request(), by=NURSE).review
    drain(services, senders(fake))
    service.acknowledge(services=services, review_id=review.id or 0, by=OUTREACH)
    fake.fail("chat.postMessage", status=0, lands=True, channel=CHANNEL)
    settle(services, fake, clock)
    replies = in_slack(fake, CHANNEL, thread=True)
    assert len(replies) == 1 and "acknowledged" in replies[0]["text"].lower()
    assert fake.called("conversations.replies")


def test_a_message_held_by_a_drainer_killed_mid_send_is_not_sent_again(
    services: Services, fake: FakeSlack, clock: FrozenClock
) -> None:
    """A drainer claimed the card, Slack posted it, and the drainer died before recording it:
    once the lease runs out another drainer finds it in the channel."""
    service.raise_review(services=services, request=request(), by=NURSE)
    with services.db.unit_of_work() as uow:
        claimed = uow.outbox.claim(
            now=clock.now(), lease=LEASE, limit=10, platforms=["slack"], held=()
        )
        card = next(row for row in claimed if row.kind == "card")
        dead = OutboundItem(
            kind="card",
            address=CHANNEL,
            message=Message.from_json(card.payload),
            card_id=None,
            review_id=card.review_id,
            tags=(outbox_tag(card),),
        )
    senders(fake)["slack"].deliver(dead)  # ... and then the drainer died
    clock.advance(LEASE.total_seconds() + 1)
    drain(services, senders(fake))
    assert len(cards(fake)) == 1
    with services.db.reading() as uow:
        saved = uow.outbox.card(card.review_id or 0, "slack", CHANNEL)
        assert saved is not None and saved.message_id == f"{CHANNEL}:{cards(fake)[0]['ts']}"


def test_a_persons_messages_that_went_together_unanswered_are_not_sent_again(
    services: Services, fake: FakeSlack, clock: FrozenClock
) -> None:
    queue_for_person(services, clock, 4)
    clock.advance(5)  # fallen behind: they go as one
    fake.fail("chat.postMessage", status=0, lands=True, channel=PERSON)
    settle(services, fake, clock)
    received = in_slack(fake, "D01SAM")
    assert len(received) == 1 and all(f"message {n}" in received[0]["text"] for n in range(4))
    with services.db.reading() as uow:
        query = select(Outbox.state).where(col(Outbox.key).startswith("test:"))
        assert uow.session.exec(query).all() == ["sent"] * 4


def test_when_slack_will_not_show_the_conversation_the_message_is_sent_again(
    services: Services, fake: FakeSlack, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Twice rather than never: a bot installed without the history scopes still delivers."""
    service.raise_review(services=services, request=request(), by=NURSE)
    fake.fail("chat.postMessage", status=0, lands=True, channel=CHANNEL)
    fake.fail("conversations.history", status=200, error="missing_scope")
    with caplog.at_level(logging.WARNING, logger="reviews.outbox"):
        settle(services, fake, clock)
    assert len(cards(fake)) == 2
    assert "cannot see whether it already arrived" in caplog.text
    assert "missing_scope" in caplog.text


@pytest.mark.parametrize(
    "planted",
    [
        # Another app posting our event type and this row's very tag: not ours.
        {"bot_id": "B0OTHERAPP", "tag": None},
        # A test bot on its own database, posting to the same channel as the same app: the
        # same row id, queued at another moment.
        {"bot_id": BOT_ID, "tag": "1@0"},
    ],
    ids=["another-app", "another-database"],
)
def test_a_message_someone_else_tagged_alike_is_not_taken_for_ours(
    services: Services, fake: FakeSlack, clock: FrozenClock, planted: dict[str, Any]
) -> None:
    service.raise_review(services=services, request=request(), by=NURSE)
    with services.db.reading() as uow:
        card = next(row for row in uow.outbox.for_review(1) if row.kind == "card")
    tag = planted["tag"] or outbox_tag(card)
    with fake._lock:
        fake.messages[CHANNEL] = [
            {
                "type": "message",
                "ts": "1600000000.000001",
                "text": "Rapid review (not this one)",
                "bot_id": planted["bot_id"],
                "metadata": {"event_type": "rapidreview_outbox", "event_payload": {"outbox": tag}},
            }
        ]
    fake.fail("chat.postMessage", status=502, channel=CHANNEL)  # refused: it never arrived
    settle(services, fake, clock)
    assert fake.called("conversations.history")
    ours = [m for m in cards(fake) if m["ts"] != "1600000000.000001"]
    assert len(ours) == 1, "a message someone else tagged was taken for the card: never posted"


def test_a_persons_messages_refused_together_go_together_again_after_one_look(
    services: Services, fake: FakeSlack, clock: FrozenClock
) -> None:
    """A bleep-holder fallen behind in a surge: six pings go as one, Slack refuses it (503,
    nothing posted). They are looked for once, then go as one again, not as six."""
    queue_for_person(services, clock, 6)
    clock.advance(5)  # fallen behind: they go as one
    fake.fail("chat.postMessage", status=503, channel=PERSON)
    settle(services, fake, clock)
    assert len(in_slack(fake, "D01SAM")) == 1
    assert len(fake.called("conversations.history")) == 1


def test_a_dead_drainers_rows_to_one_person_still_go_together_after_one_look(
    services: Services, fake: FakeSlack, clock: FrozenClock
) -> None:
    queue_for_person(services, clock, 6)
    clock.advance(5)
    with services.db.unit_of_work() as uow:  # a drainer claims them and is killed at once
        uow.outbox.claim(now=clock.now(), lease=LEASE, limit=50, platforms=["slack"], held=())
    clock.advance(LEASE.total_seconds() + 1)
    drain(services, senders(fake))
    assert len(in_slack(fake, "D01SAM")) == 1
    assert len(fake.called("conversations.history")) == 1


def test_a_rate_limited_look_waits_as_slack_asks_instead_of_posting_twice(
    services: Services, fake: FakeSlack, clock: FrozenClock
) -> None:
    service.raise_review(services=services, request=request(), by=NURSE)
    fake.fail("chat.postMessage", status=0, lands=True, channel=CHANNEL)
    fake.fail("conversations.history", status=429, retry_after=7)
    drain(services, senders(fake))  # the card lands unanswered
    clock.advance(2)
    drain(services, senders(fake))  # the look is refused: wait 7 s
    clock.advance(5)
    drain(services, senders(fake))
    assert len(fake.called("conversations.history")) == 1, "looked again before Retry-After"
    clock.advance(3)
    drain(services, senders(fake))
    assert len(cards(fake)) == 1


def test_a_look_slack_keeps_refusing_gives_way_to_sending_again(
    services: Services, fake: FakeSlack, clock: FrozenClock
) -> None:
    """Twice rather than never: after LOOK_ATTEMPTS rate-limited looks the card goes."""
    service.raise_review(services=services, request=request(), by=NURSE)
    fake.fail("chat.postMessage", status=0, lands=True, channel=CHANNEL)
    fake.fail("conversations.history", times=100, status=429, retry_after=1)
    for _ in range(LOOK_ATTEMPTS + 2):
        drain(services, senders(fake))
        clock.advance(2)
    assert len(cards(fake)) == 2
    with services.db.reading() as uow:
        assert not [row for row in uow.outbox.for_review(1) if row.state == "failed"]


def test_a_thread_line_in_a_long_thread_whose_answer_was_lost_is_posted_once(
    services: Services, fake: FakeSlack, clock: FrozenClock
) -> None:
    """A thread is read oldest first: the look pages through the team's 300 replies."""
    review = service.raise_review(services=services, request=request(), by=NURSE).review
    drain(services, senders(fake))
    parent = cards(fake)[0]["ts"]
    with fake._lock:
        for n in range(300):  # the team talking in the card's thread
            fake.messages[CHANNEL].append(
                {
                    "type": "message",
                    "ts": f"1700000100.{n:06d}",
                    "text": "on my way",
                    "user": "U0HUMAN",
                    "thread_ts": parent,
                }
            )
    service.acknowledge(services=services, review_id=review.id or 0, by=OUTREACH)
    fake.fail("chat.postMessage", status=0, lands=True, channel=CHANNEL)
    settle(services, fake, clock)
    lines = [m for m in in_slack(fake, CHANNEL, thread=True) if m.get("bot_id") == BOT_ID]
    assert len(lines) == 1, f"the thread line was posted {len(lines)} times"


def test_a_card_slack_posts_after_the_bot_stopped_waiting_is_found_not_posted_twice(
    services: Services, fake: FakeSlack, clock: FrozenClock
) -> None:
    """The sender gives up after its timeout (1 s here) but Slack posts the card a moment
    later: the next attempt waits that long again, so its look finds the card."""
    service.raise_review(services=services, request=request(), by=NURSE)
    fake.slow[CHANNEL] = 1.5  # Slack takes this post 1.5 s after it is sent
    client = PooledWebClient(token="xoxb-test", base_url=fake.url, timeout=1)
    drain(services, {"slack": SlackSender(client)})  # gave up waiting after 1 s
    del fake.slow[CHANNEL]
    clock.advance(0.5)
    drain(services, {"slack": SlackSender(client)})
    assert not fake.called("conversations.history"), "tried again before the timeout had passed"
    time.sleep(1.0)  # as the bot's clock moves on to the retry, Slack's does too
    clock.advance(0.5)
    drain(services, {"slack": SlackSender(client)})
    assert len(cards(fake)) == 1


def test_the_migration_keeps_queued_messages_unflagged(database_url: str) -> None:
    """0006 on a database with a message mid-send: kept, and not taken for one that arrived."""
    db = Database(database_url)
    try:
        config = alembic_config(db.engine)
        command.downgrade(config, "0002_audit_ids")
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO outbox (key, platform, kind, address, payload, state, attempts,"
                    " created_at, next_attempt_at) VALUES ('k1', 'slack', 'direct', 'U1', '{}',"
                    " 'sending', 1, '2026-01-01 00:00:00', '2026-01-01 00:00:15')"
                )
            )
        command.upgrade(config, "head")
        with db.reading() as uow:
            row = uow.session.exec(select(Outbox).where(col(Outbox.key) == "k1")).one()
            assert row.maybe_sent is False and row.state == "sending"
    finally:
        db.dispose()
