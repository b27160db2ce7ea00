"""The outbox: retries, Retry-After, giving up loudly, per-recipient order, no doubles."""

from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlmodel import select

from reviews import notify, outbox, service
from reviews.messages import Message
from reviews.notify import Route
from reviews.outbox import (
    ALARM_ATTEMPTS,
    LEASE,
    DeliveryError,
    OutboundItem,
    backoff,
    drain,
    recover,
)
from sender_process import STANDBY
from storage.database import Database
from storage.outbox import OutboxStore
from storage.tables import Outbox, ReviewEvent
from tests.support.builders import (
    NURSE,
    OUTREACH,
    HeldSender,
    RecordingSender,
    another_replica_ticks_past_the_lease,
    make_services,
    on_rota,
    request,
)

DIGEST = "C0DIGEST"


@pytest.fixture
def services(db, clock):
    return make_services(db, clock)


def queue(services, address: str, text: str) -> None:
    with services.db.unit_of_work() as uow:
        notify.to_user(
            uow,
            platform="slack",
            user_id=address,
            key=f"test:{address}:{text}",
            message=Message(text=text),
            at=services.clock.now(),
        )


def rows(services) -> dict[str, Outbox]:
    with services.db.unit_of_work() as uow:
        return {row.key: row for row in uow.session.exec(select(Outbox)).all()}


def texts(sender, address):
    return [item.message.text for item in sender.to(address)]


def test_a_message_is_queued_once_per_key(services):
    with services.db.unit_of_work() as uow:
        first = uow.outbox.enqueue(
            key="k",
            platform="slack",
            kind="direct",
            address="U1",
            payload=Message("a").to_json(),
            at=services.clock.now(),
        )
        again = uow.outbox.enqueue(
            key="k",
            platform="slack",
            kind="direct",
            address="U1",
            payload=Message("b").to_json(),
            at=services.clock.now(),
        )
    assert (first, again) == (True, False)
    assert [row.payload for row in rows(services).values()] == [Message("a").to_json()]


def test_network_errors_and_5xx_are_retried_with_backoff(services, clock):
    slack = RecordingSender(failures=[DeliveryError("Slack 503"), DeliveryError("network")])
    queue(services, "U1", "ping")
    drain(services, {"slack": slack})
    clock.advance(backoff(1) - 0.01)
    drain(services, {"slack": slack})
    assert slack.sent == [] and len(slack.failures) == 1
    clock.advance(0.01)
    drain(services, {"slack": slack})  # second attempt fails; the next waits twice as long
    clock.advance(backoff(2) - 0.01)
    drain(services, {"slack": slack})
    assert slack.sent == []
    clock.advance(0.01)
    drain(services, {"slack": slack})
    assert texts(slack, "U1") == ["ping"]
    row = rows(services)["test:U1:ping"]
    assert (row.state, row.attempts, row.sent_at) == ("sent", 3, clock.now())
    assert (backoff(1), backoff(2), backoff(3), backoff(7), backoff(2000)) == (1, 2, 4, 60, 60)


def test_429_is_retried_exactly_after_retry_after(services, clock):
    slack = RecordingSender(failures=[DeliveryError("rate limited", retry_after=30)])
    queue(services, "U1", "ping")
    drain(services, {"slack": slack})
    assert rows(services)["test:U1:ping"].next_attempt_at == clock.now() + timedelta(seconds=30)
    clock.advance(29.99)
    drain(services, {"slack": slack})
    assert slack.sent == []
    clock.advance(0.01)
    drain(services, {"slack": slack})
    assert texts(slack, "U1") == ["ping"]


def test_a_message_that_keeps_failing_is_reported_once_and_still_tried(services, clock):
    down = RecordingSender(failures=[DeliveryError("Slack 500")] * 1000)
    queue(services, "U1", "ping")
    for _ in range(ALARM_ATTEMPTS + 5):  # Slack down: nothing else goes either
        drain(services, {"slack": down})
        clock.advance(backoff(ALARM_ATTEMPTS))
    row = rows(services)["test:U1:ping"]
    assert (row.state, row.attempts, row.last_error) == ("pending", ALARM_ATTEMPTS + 5, "Slack 500")
    slack = RecordingSender()  # Slack is back
    drain(services, {"slack": slack})
    assert texts(slack, "U1") == ["ping"]
    assert texts(slack, DIGEST) == [
        f"A direct message on slack has not gone after {ALARM_ATTEMPTS} attempts: Slack 500. "
        "It is still being tried, and goes as soon as slack takes it (for up to 24 hours)."
    ]
    with services.db.unit_of_work() as uow:
        event = uow.session.exec(select(ReviewEvent)).one()
    assert event.kind == "delivery_delayed" and json.loads(event.detail)["outbox_id"] == row.id


def test_a_permanent_refusal_fails_at_once_and_is_reported(services):
    on_rota(services.db, "outreach", "Alex Carter", "U01ALEX", services.clock.now())
    service.raise_review(services=services, request=request(), by=NURSE)
    slack = RecordingSender(
        failures=[DeliveryError("channel_not_found", permanent=True)], failing="U01ALEX"
    )
    drain(services, {"slack": slack})  # Alex's ping is refused
    [ping] = [row for row in rows(services).values() if row.address == "U01ALEX"]
    assert ping.state == "failed"
    assert (
        "A direct message on slack about RR-0001 could not be delivered after 1 attempt: "
        "channel_not_found"
    ) in texts(slack, DIGEST)
    assert rows(services)["card:1:slack"].state == "sent"  # the rest still went


def test_each_recipient_gets_messages_in_the_order_queued(services, clock):
    slack = RecordingSender(failures=[DeliveryError("Slack 502")], failing="U1")
    for text in ("first", "second", "third"):
        queue(services, "U1", text)
    queue(services, "U2", "other")
    drain(services, {"slack": slack})
    # "first" failed; "second" and "third" wait behind it, U2 does not.
    assert texts(slack, "U1") == [] and texts(slack, "U2") == ["other"]
    clock.advance(backoff(1))
    drain(services, {"slack": slack})
    assert texts(slack, "U1") == ["first", "second", "third"]


def test_a_message_whose_sender_died_mid_send_goes_after_the_lease(services, clock):
    @dataclass
    class DyingSender:
        def deliver(self, item: OutboundItem) -> str | None:
            raise SystemExit  # the process is killed between claiming and sending

    queue(services, "U1", "ping")
    with pytest.raises(SystemExit):
        drain(services, {"slack": DyingSender()})
    slack = RecordingSender()
    drain(services, {"slack": slack})
    assert slack.sent == []  # another drainer must not take a leased row
    clock.advance(LEASE.total_seconds())
    drain(services, {"slack": slack})
    assert texts(slack, "U1") == ["ping"]


def test_a_standby_drain_sends_only_what_its_sender_process_has_left(services, clock):
    """Beside its sender process the bot drains as a standby: what fell due less than STANDBY
    ago is the sender's; once it has waited that long the bot sends it itself, and a row a
    stalled sender holds goes STANDBY after that sender's lease runs out."""
    queue(services, "U1", "first")
    bot = RecordingSender()
    drain(services, {"slack": bot}, standby=STANDBY)
    clock.advance(STANDBY.total_seconds() - 0.5)
    drain(services, {"slack": bot}, standby=STANDBY)
    assert bot.sent == []
    clock.advance(0.5)
    drain(services, {"slack": bot}, standby=STANDBY)
    assert texts(bot, "U1") == ["first"]

    @dataclass
    class StalledSender:
        def deliver(self, item: OutboundItem) -> str | None:
            raise SystemExit  # the sender process stops mid-send, its lease taken

    queue(services, "U2", "second")
    with pytest.raises(SystemExit):
        drain(services, {"slack": StalledSender()})
    clock.advance(LEASE.total_seconds())
    drain(services, {"slack": bot}, standby=STANDBY)
    assert texts(bot, "U2") == []
    clock.advance(STANDBY.total_seconds())
    drain(services, {"slack": bot}, standby=STANDBY)
    assert texts(bot, "U2") == ["second"]


def test_rows_a_drainer_has_not_begun_go_back_when_its_time_is_up_not_after_its_slowest_send(
    services, monkeypatch
) -> None:
    """One send hangs: the other destinations' rows its drainer claimed, and no worker has
    begun, are handed back once the drain's time is up, for another drainer (a replica, or the
    bot beside its sender process) to send, instead of waiting out the hung send."""
    monkeypatch.setattr(outbox, "DRAIN_TIME", 0.3)
    queue(services, "U1", "hung")
    queue(services, "U2", "waiting behind it")
    slow = HeldSender()
    first = threading.Thread(target=drain, args=(services, {"slack": slow}), kwargs={"workers": 1})
    first.start()
    try:
        assert slow.sending.wait(timeout=10)
        other = RecordingSender()
        deadline = time.monotonic() + 10
        while not other.sent and time.monotonic() < deadline:
            drain(services, {"slack": other})
            time.sleep(0.05)
        assert texts(other, "U2") == ["waiting behind it"]
        assert texts(other, "U1") == []  # still its first drainer's, mid-send
    finally:
        slow.release.set()
        first.join(timeout=30)
    assert texts(slow, "U1") == ["hung"] and texts(slow, "U2") == []


def test_a_living_drainer_keeps_its_rows_through_a_send_longer_than_the_lease(
    services, clock, monkeypatch
) -> None:
    # A killed replica's rows go again after LEASE (above); a slow send must not lose its rows
    # to another drainer, or the message would go twice.
    monkeypatch.setattr(outbox, "RENEW_EVERY", 0.05)
    queue(services, "U1", "ping")
    slow = HeldSender()
    first = threading.Thread(target=drain, args=(services, {"slack": slow}))
    first.start()
    assert slow.sending.wait(timeout=10)
    other = another_replica_ticks_past_the_lease(services, clock)
    slow.release.set()
    first.join(timeout=30)
    assert other.sent == [] and texts(slow, "U1") == ["ping"]


def test_a_killed_drainers_ping_holds_up_only_its_own_requests_next_messages(
    services, clock
) -> None:
    # A major incident: a replica dies holding the bleep-holder's ping about RR-0001. Their
    # pings about every other request must not wait for its lease to run out.
    on_rota(services.db, "outreach", OUTREACH.name, OUTREACH.user_id, clock.now())

    class DyingSender:
        def deliver(self, item: OutboundItem) -> str | None:
            raise SystemExit  # the process is killed between claiming and sending

    first = service.raise_review(services=services, request=request(), by=NURSE)
    with pytest.raises(SystemExit):
        drain(services, {"slack": DyingSender()})
    second = service.raise_review(services=services, request=request(bed="9"), by=NURSE)
    with services.db.unit_of_work() as uow:
        notify.to_user(
            uow,
            platform="slack",
            user_id=OUTREACH.user_id,
            key="test:second-about-first",
            message=Message(text="more about the first"),
            at=clock.now(),
            review_id=first.review_id,
        )
    slack = RecordingSender()
    drain(services, {"slack": slack})
    assert [second.reference in i.message.text for i in slack.to(OUTREACH.user_id)] == [True]
    assert slack.to("C0OUTREACH") == []  # a channel's cards still go in order
    clock.advance(LEASE.total_seconds())
    drain(services, {"slack": slack})
    after = [i.message.text for i in slack.to(OUTREACH.user_id)][1:]
    assert first.reference in after[0] and after[1:] == ["more about the first"]


def test_the_standby_drain_never_passes_a_ping_its_sender_process_is_sending(
    services, clock
) -> None:
    """Slack slow: the sender process is mid-send with the bleep-holder's ping about RR-0001
    when their ping about RR-0002 has waited STANDBY. The bot's standby leaves it for the
    sender, so the person's pings arrive in order."""
    on_rota(services.db, "outreach", OUTREACH.name, OUTREACH.user_id, clock.now())
    first = service.raise_review(services=services, request=request(), by=NURSE)
    slow = HeldSender()
    sender = threading.Thread(target=drain, args=(services, {"slack": slow}))
    sender.start()
    try:
        assert slow.sending.wait(timeout=10)
        second = service.raise_review(services=services, request=request(bed="9"), by=NURSE)
        clock.advance(STANDBY.total_seconds() + 1)
        bot = RecordingSender()
        drain(services, {"slack": bot}, standby=STANDBY)
        assert [i.message.text for i in bot.to(OUTREACH.user_id)] == []
    finally:
        slow.release.set()
        sender.join(timeout=30)
    drain(services, {"slack": slow})
    pings = [i.message.text for i in slow.to(OUTREACH.user_id)]
    assert [first.reference in pings[0], second.reference in pings[1]] == [True, True]


def test_a_message_queued_behind_another_replicas_ping_waits_even_if_its_claim_lands_late(
    services, clock, monkeypatch
) -> None:
    # Only a person's pings about other requests may pass another replica's ping in flight.
    # Here that replica's claim of the ping commits between this drainer's two looks at the
    # queue: the first skips the ping (locked) and finds the message behind it due, the
    # second sees the ping claimed. The message must still wait its turn.
    if services.db.is_sqlite:
        pytest.skip("SQLite has one writer: two claims cannot interleave")
    queue(services, "U1", "ping")
    with ExitStack() as other_replica:
        uow = other_replica.enter_context(services.db.unit_of_work())
        [ping] = uow.outbox.claim(
            now=clock.now(), lease=LEASE, limit=10, platforms=["slack"], held=set()
        )
        with services.db.unit_of_work() as later:
            later.outbox.enqueue(
                key="test:U1:notice",
                platform="slack",
                kind="channel",
                address="U1",
                payload=json.dumps({"text": "notice"}),
                at=clock.now(),
            )
        looks = 0
        due = OutboxStore._due

        def due_then_the_other_claim_lands(store, *args, **kwargs):
            nonlocal looks
            found = due(store, *args, **kwargs)
            looks += 1
            if looks == 2:
                other_replica.close()  # its claim of the ping commits now
            return found

        monkeypatch.setattr(OutboxStore, "_due", due_then_the_other_claim_lands)
        slack = RecordingSender()
        drain(services, {"slack": slack})
        assert looks >= 2 and ping.key == "test:U1:ping"
    assert slack.sent == [], "the notice went ahead of the ping another replica holds"
    monkeypatch.undo()
    clock.advance(LEASE.total_seconds())  # that replica died holding it
    drain(services, {"slack": slack})
    assert texts(slack, "U1") == ["ping", "notice"]


def test_slack_refusing_one_of_a_persons_pings_holds_back_their_others_for_the_wait(
    services, clock
) -> None:
    # Slack's 429 is for the conversation: pinging them about the next request at once would
    # only be refused again.
    on_rota(services.db, "outreach", OUTREACH.name, OUTREACH.user_id, clock.now())
    first = service.raise_review(services=services, request=request(), by=NURSE)
    second = service.raise_review(services=services, request=request(bed="9"), by=NURSE)
    refused = DeliveryError("Slack 429", retry_after=30)
    slack = RecordingSender(failures=[refused], failing=OUTREACH.user_id)
    drain(services, {"slack": slack})
    assert slack.to(OUTREACH.user_id) == []
    clock.advance(seconds=30)
    drain(services, {"slack": slack})
    pinged = [i.message.text for i in slack.to(OUTREACH.user_id)]
    assert [first.reference in pinged[0], second.reference in pinged[1]] == [True, True]


@dataclass
class ThreadSafeRecorder:
    """Records from several drainers at once; each delivery yields the GIL to interleave."""

    sent: list[OutboundItem] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def deliver(self, item: OutboundItem) -> str | None:
        with self.lock:
            self.sent.append(item)
        return "ok"


def test_two_drainers_at_once_never_send_a_row_twice(services, database_url):
    for number in range(120):
        queue(services, f"U{number % 6}", f"{number:03d}")
    slack = ThreadSafeRecorder()
    replicas = [make_services(Database(database_url), services.clock) for _ in range(2)]
    threads = [
        threading.Thread(target=drain, args=(r, {"slack": slack}), kwargs={"limit": 5})
        for r in replicas
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    texts_sent = [item.message.text for item in slack.sent]
    assert sorted(texts_sent) == [f"{n:03d}" for n in range(120)]
    for user in range(6):
        mine = [
            t for item, t in zip(slack.sent, texts_sent, strict=True) if item.address == f"U{user}"
        ]
        assert mine == sorted(mine)
    for replica in replicas:
        replica.db.dispose()


def test_a_route_without_a_digest_channel_reports_in_its_outreach_channel(db, clock):
    """DIGEST_CHANNEL is optional: without it an alarm goes to the team's channel, not nowhere."""
    services = make_services(db, clock, routes=(Route("slack", "C0OUTREACH"),))
    slack = RecordingSender(failures=[DeliveryError("gone", permanent=True)])
    queue(services, "U1", "ping")
    drain(services, {"slack": slack})
    drain(services, {"slack": slack})
    assert texts(slack, "U1") == []
    assert texts(slack, "C0OUTREACH") == [
        "A direct message on slack could not be delivered after 1 attempt: gone"
    ]


def test_a_long_queue_behind_one_failing_recipient_holds_up_nobody_else(services, clock):
    slack = RecordingSender(failures=[DeliveryError("Slack 503")], failing="U1")
    for number in range(60):  # more than one claim's worth, all behind the failing first
        queue(services, "U1", f"{number:02d}")
    queue(services, "U2", "other")
    drain(services, {"slack": slack})
    assert texts(slack, "U2") == ["other"] and texts(slack, "U1") == []
    # While U1's first waits to be tried again, what is queued for others later goes at once.
    queue(services, "U2", "later")
    queue(services, "C0OUTREACH", "card")
    drain(services, {"slack": slack})
    assert texts(slack, "U2") == ["other", "later"] and texts(slack, "C0OUTREACH") == ["card"]
    assert texts(slack, "U1") == []
    clock.advance(backoff(1))
    drain(services, {"slack": slack})
    assert texts(slack, "U1") == [f"{number:02d}" for number in range(60)]


def test_a_card_update_queued_with_its_card_updates_that_card(services):
    on_rota(services.db, "outreach", "Alex Carter", "U01ALEX", services.clock.now())
    review = service.raise_review(services=services, request=request(), by=NURSE).review
    service.acknowledge(services=services, review_id=review.id, by=OUTREACH)
    slack = RecordingSender()
    drain(services, {"slack": slack})  # card, update and thread line all in one batch
    card, update, thread = [item for item in slack.to("C0OUTREACH")]
    assert (card.kind, update.kind, thread.kind) == ("card", "card_update", "thread")
    assert update.card_id == thread.card_id == slack.id_of(card)


def test_direct_messages_go_ahead_of_cards_and_card_updates(services):
    on_rota(services.db, "outreach", "Alex Carter", "U01ALEX", services.clock.now())
    first = service.raise_review(services=services, request=request(), by=NURSE).review
    drain(services, {"slack": RecordingSender()})
    service.acknowledge(services=services, review_id=first.id, by=OUTREACH)  # update, thread
    for _ in range(3):  # a burst: three cards for the channel, three pings for Alex
        service.raise_review(services=services, request=request(), by=NURSE)
    slack = RecordingSender()
    # One worker, as when every worker is busy: the urgent lane's destinations get it first.
    drain(services, {"slack": slack}, workers=1)
    kinds = [item.kind for item in slack.sent]
    # The people told first (the nurse, of the acknowledgement; Alex, of three new requests),
    # then the channel, whose own messages still go in the order they were queued.
    directs = kinds.count("direct")
    assert directs >= 4
    assert kinds == ["direct"] * directs + ["card_update", "thread", "card", "card", "card"]


def test_on_restart_sqlite_sends_what_a_killed_drainer_held_at_once(services, clock):
    @dataclass
    class Killed:
        def deliver(self, item: OutboundItem) -> str | None:
            raise SystemExit  # killed while sending

    queue(services, "U1", "ping")
    with pytest.raises(SystemExit):
        drain(services, {"slack": Killed()})
    released = recover(services)  # what a restarted bot does first
    slack = RecordingSender()
    drain(services, {"slack": slack})
    if services.db.is_sqlite:  # the only process: nobody else can be sending it
        assert released == 1 and texts(slack, "U1") == ["ping"]
    else:  # another replica may be mid-send: the lease stands
        assert released == 0 and slack.sent == []


@pytest.mark.parametrize("payload", ['{"not": "a message"}', "null", "[1]", "not json"])
def test_an_unreadable_message_fails_and_reported_and_holds_up_nothing(services, payload):
    queue(services, "U1", "broken")
    queue(services, "U1", "after it")
    with services.db.unit_of_work() as uow:
        uow.outbox.get(rows(services)["test:U1:broken"].id).payload = payload
    slack = RecordingSender()
    drain(services, {"slack": slack})
    assert rows(services)["test:U1:broken"].state == "failed"
    assert texts(slack, "U1") == ["after it"]
    assert any("could not be delivered" in text for text in texts(slack, DIGEST))


def test_a_persons_direct_messages_fallen_behind_go_as_one_naming_each(services, clock) -> None:
    # A major incident: one bleep-holder's conversation takes about a message a second.
    for number in range(5):
        queue(services, "U01ALEX", f"New rapid review RR-000{number + 1} (urgent)")
    queue(services, "U01SAM", "New rapid review RR-0009 (urgent)")
    clock.advance(seconds=3)
    slack = RecordingSender()
    drain(services, {"slack": slack})
    [together] = slack.to("U01ALEX")
    assert together.message.actions == () and together.message.text.startswith("5 messages")
    for number in range(5):
        assert f"RR-000{number + 1}" in together.message.text
    assert [i.message.text for i in slack.to("U01SAM")] == ["New rapid review RR-0009 (urgent)"]
    sent = {row.key: (row.state, row.message_id) for row in rows(services).values()}
    assert {state for state, _ in sent.values()} == {"sent"}
    assert len({message_id for key, (_, message_id) in sent.items() if "U01ALEX" in key}) == 1


def test_direct_messages_on_time_go_one_by_one_with_their_own_buttons(services, clock) -> None:
    for number in range(5):
        queue(services, "U01ALEX", f"New rapid review RR-000{number + 1} (urgent)")
    slack = RecordingSender()
    drain(services, {"slack": slack})
    assert [i.message.text for i in slack.to("U01ALEX")] == [
        f"New rapid review RR-000{number + 1} (urgent)" for number in range(5)
    ]


def test_the_standby_drain_sends_a_persons_messages_one_by_one_when_just_past_its_standby(
    services, clock
) -> None:
    """What the bot's standby drain takes has always waited STANDBY: a sender process stopped
    for a moment must not merge a person's pings into one without their buttons."""
    for number in range(3):
        queue(services, "U01ALEX", f"New rapid review RR-000{number + 1} (urgent)")
    clock.advance(STANDBY.total_seconds() + 1)
    slack = RecordingSender()
    drain(services, {"slack": slack}, standby=STANDBY)
    assert [i.message.text for i in slack.to("U01ALEX")] == [
        f"New rapid review RR-000{number + 1} (urgent)" for number in range(3)
    ]


def test_a_drain_told_to_stop_records_the_send_under_way_and_hands_back_the_rest(
    services,
) -> None:
    """The sender process's input closes (its bot stopping): the send under way is recorded,
    and what no send has begun goes back at once, for the bot or a replica, not begun."""
    queue(services, "U1", "under way")
    queue(services, "U1", "not begun")
    queue(services, "U2", "another's")
    slow, told = HeldSender(), threading.Event()
    drainer = threading.Thread(
        target=drain,
        args=(services, {"slack": slow}),
        kwargs={"workers": 1, "told_to_stop": told},
    )
    drainer.start()
    assert slow.sending.wait(timeout=10)
    told.set()
    slow.release.set()
    drainer.join(timeout=30)
    assert texts(slow, "U1") == ["under way"] and texts(slow, "U2") == []
    states = {key: row.state for key, row in rows(services).items()}
    assert states == {
        "test:U1:under way": "sent",
        "test:U1:not begun": "pending",
        "test:U2:another's": "pending",
    }
    bot = RecordingSender()
    drain(services, {"slack": bot})
    assert texts(bot, "U1") == ["not begun"] and texts(bot, "U2") == ["another's"]


def test_only_what_the_dead_drainer_claimed_is_handed_back_and_looked_for_first(
    services, clock
) -> None:
    """The bot hands back what its dead sender process held (outbox.hand_back): never what
    another replica, alive and sending, holds under its own lease."""
    queue(services, "U1", "held by the dead sender")
    with services.db.unit_of_work() as uow:
        uow.outbox.claim(now=clock.now(), lease=LEASE, limit=10, platforms=["slack"], by="dead")
    queue(services, "U2", "held by a live replica")
    with services.db.unit_of_work() as uow:
        uow.outbox.claim(now=clock.now(), lease=LEASE, limit=10, platforms=["slack"], by="alive")

    assert outbox.hand_back(services, "dead") == 1

    held = rows(services)
    dead, alive = held["test:U1:held by the dead sender"], held["test:U2:held by a live replica"]
    assert (dead.state, dead.maybe_sent, dead.next_attempt_at) == ("pending", True, clock.now())
    assert (alive.state, alive.maybe_sent) == ("sending", False)
    assert outbox.hand_back(services, "dead") == 0  # nothing twice


def test_a_drainer_stalled_past_its_lease_hands_back_only_what_it_still_holds(
    services, clock
) -> None:
    """Drainer A stalls past its lease; B claims the row and is sending it. When A wakes and
    hands back what it had not begun, B's claim stands: nothing goes again behind B's back."""
    queue(services, "U1", "ping")
    with services.db.unit_of_work() as uow:
        [row] = uow.outbox.claim(
            now=clock.now(), lease=LEASE, limit=10, platforms=["slack"], by="A"
        )
    clock.advance(seconds=LEASE.total_seconds() + 1)  # A stalled: its lease ran out
    with services.db.unit_of_work() as uow:
        [again] = uow.outbox.claim(
            now=clock.now(), lease=LEASE, limit=10, platforms=["slack"], by="B"
        )
    assert again.id == row.id
    with services.db.unit_of_work() as uow:
        uow.outbox.release([row.id], now=clock.now(), by="A")
    held = rows(services)["test:U1:ping"]
    assert (held.state, held.claimed_by) == ("sending", "B")
    with services.db.unit_of_work() as uow:
        uow.outbox.release([row.id], now=clock.now(), by="B")
    assert rows(services)["test:U1:ping"].state == "pending"
