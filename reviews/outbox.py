"""Delivering queued messages through each platform's sender, with retries.

A row is claimed under a lease, sent outside any transaction, then marked sent. If the process
dies between the send and the mark, or the platform's answer is lost, the row may have arrived
unseen: it is flagged `maybe_sent`, and before it goes again a sender that can look (Slack, by
the message's metadata: Looker) is asked whether it arrived, once for all the rows about to go
to that destination. A sender that cannot look sends it again: at-least-once at that one
point, exactly-once everywhere else (the UNIQUE key stops doubles).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol

from reviews import callback, checkins, escalation, fallback, notify, texts
from reviews.context import Services
from reviews.messages import Message
from reviews.model import format_reference
from storage.database import DatabaseUnavailable, UnitOfWork
from storage.outbox import lane
from storage.tables import Outbox

log = logging.getLogger(__name__)

# How long a claimed row is held for its drainer. A living drainer renews it every RENEW_EVERY,
# so the lease only decides how soon the rows a killed replica held go again: every later
# message to the same person waits behind them (a bleep-holder's pings stalled for the whole of
# a 60 s lease in a surge with a replica killed).
LEASE = timedelta(seconds=15)
RENEW_EVERY = 5.0
# Destinations one process sends to at once. Slack answers in 100-300 ms, so one at a time is
# 3-10 messages a second: a busy channel (one post a second, then 429s) or a slow conversation
# would hold up everyone's direct messages. 8 side by side is 25-80 calls a second, more than
# Slack lets an app post across a workspace; within the Slack client's kept-alive connections
# (handlers/slack/client.py) and the database pools (SQLite 32, PostgreSQL 10 + 15) with room
# left for the listeners; and each worker is a thread that mostly waits on the network.
WORKERS = 8
# Seconds one drain claims and sends for, then returns (the scheduler starts the next within a
# tick): so /healthz sees it complete; its leases are renewed while it waits for a send (each
# times out after 10 s), so no other drainer can take a row this one still holds.
DRAIN_TIME = 5.0
# Seconds between claims while sends are under way, so rows falling due join them: the tick's
# own interval (bot.py), no later than an idle replica would see them. Claiming more often
# costs each busy replica a query a tenth of a second for nothing: measured, it slowed sends.
CLAIM_EVERY = 0.25
# A person's direct messages waiting behind one another. In a major incident every new request
# pings the same bleep-holder, and Slack takes about one message a second in one conversation
# (each call 100-300 ms): 500 requests in a minute would reach them minutes late one by one.
# Once they fall behind (the first waiting has been due TOGETHER_LATE), from this many queued
# they go as one message with a line each (no buttons: each request's card in the outreach
# channel has them); otherwise they go as they are, buttons and all.
TOGETHER_LATE = timedelta(seconds=2)
TOGETHER_FROM = 3
TOGETHER_MOST = 20  # lines in one message: Slack's text section holds 3,000 characters
# Characters one together message may take as Slack shows it (& < > escaped): one of Slack's
# sections, so the lines read as one block. Fewer of the person's messages go together when
# their lines are long (a cancellation's reason).
TOGETHER_CHARS = 3000
# A message that does not go for a reason that can pass (a platform down, a 5xx, a timeout, a
# 429) is tried again after 1, 2, 4 ... seconds, then every MAX_BACKOFF, until RETRY_FOR after it
# was queued: a card must still appear, and a ping still arrive while its request waits, once
# the platform is back from an outage of hours. (A ping or text about a request acknowledged or
# closed meanwhile is dropped then: storage.outbox.drop_pending_escalations.)
RETRY_FOR = timedelta(hours=24)
# Failed attempts (about two minutes of backoff) after which the digest channel is told, once,
# that a message is held up; it is still tried. A message failing this often while messages
# queued after it go to its platform (within MAX_BACKOFF) is failed then instead: it is this
# message, not the platform, and it holds up everything behind it to its destination.
ALARM_ATTEMPTS = 8
# About as long as ALARM_ATTEMPTS tries take (1 + 2 + 4 ... + 60 s): a ping untried that long
# behind a held-up one to the same person is held up too (reviews.escalation.nobody_reached).
HELD_UP_FOR = timedelta(minutes=2)
# How far back a held-up message's retry looks for pings behind it that came to HELD_UP_FOR: a
# little over the time between its retries (MAX_BACKOFF), so that each is looked at about once,
# not every minute for as long as the outage lasts.
BEHIND_LOOKED_AT = timedelta(minutes=3)
# How long later messages must have been going to a platform before one that still fails there
# is taken to be the problem itself, and failed (about five more tries, a minute apart).
BACK_FOR = timedelta(minutes=5)
# Attempts after which a row a platform will not yet let us look for (429 on the look) is sent
# without looking: twice rather than held back for ever.
LOOK_ATTEMPTS = 3
# Seconds a row waits at most when the platform asks us to wait before looking for it.
LOOK_WAIT_MOST = 30.0
MAX_BACKOFF = 60.0
CREDENTIALS_RETRY = timedelta(seconds=30)  # how often a platform refusing the bot is tried again
# Names this process's claims (Outbox.claimed_by): new for each process, or given it by the bot
# that started it as its sender process, so the bot can hand back what a dead sender held.
DRAINER_ENV = "RAPIDREVIEW_DRAINER"
DRAINER = os.environ.get(DRAINER_ENV, "")[:40] or uuid.uuid4().hex


class DeliveryError(Exception):
    """A send that did not go. `retry_after` from the platform (429) wins over our backoff.

    `permanent`: this message can never go (a channel that does not exist). `credentials`: the
    platform refuses the bot itself (a revoked token, an expired secret); no message can go
    until a person fixes it, and then every one should, so the message waits. `uncertain`: the
    platform may have taken the message all the same (its answer was lost to the network or a
    5xx), so the next attempt looks for it first. `throttled`: the platform is up and asks us to
    slow down (429; Teams' 412); any other failure that is not permanent says the platform
    cannot be reached or is failing (5xx, the network, a timeout).
    """

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        credentials: bool = False,
        uncertain: bool = False,
        throttled: bool = False,
    ):
        super().__init__(reason)
        self.retry_after = retry_after
        self.permanent = permanent
        self.credentials = credentials
        self.uncertain = uncertain
        self.throttled = throttled


@dataclass(frozen=True)
class OutboundItem:
    kind: str  # card, card_update, thread, direct, channel
    address: str
    message: Message
    card_id: str | None  # the card's message id in `address`, for card_update and thread
    review_id: int | None
    tags: tuple[str, ...] = ()  # the rows it stands for (outbox_tag), to tag the message with


class Sender(Protocol):
    def deliver(self, item: OutboundItem) -> str | None:
        """Send one item; return the platform's message id. Raise DeliveryError to retry."""
        ...


class Looker(Protocol):
    """A sender that can tell whether a message it sent arrived though its answer was lost."""

    def arrived(self, items: Sequence[OutboundItem]) -> dict[str, str]:
        """{tag: message id} for those of the items' tags found on a message already there,
        {tag: UNSEEN} for those it could not look for (the platform will not show us: they
        are sent again, still flagged as maybe there); a tag left out was looked for and is
        not there. DeliveryError(retry_after) when the platform asks us to wait first."""
        ...


# A Looker's answer for a tag it could not look for (unseen): not a message id.
UNSEEN = ""


def drain(
    services: Services,
    senders: Mapping[str, Sender],
    *,
    limit: int = 50,
    workers: int = WORKERS,
    standby: timedelta | None = None,
    told_to_stop: threading.Event | None = None,
) -> int:
    """Send what is due until nothing is (or DRAIN_TIME has passed); the rows handled.

    Claimed rows are grouped by destination (platform, address). Each destination's rows go in
    the order they were queued, on one worker; different destinations go side by side, up to
    `workers` at once, the urgent lane's first when workers are scarce. While sends are under
    way, rows falling due are claimed too, so a slow destination holds up only itself. After a
    row fails, the rest of its destination's wait for its retry (a person's: those about the
    same request; another drainer's hold, too, holds back only those). With `standby`, only
    rows that fell due at least that long ago are claimed: the bot's own drain beside its
    sender process (sender_process.py), which sends only what that process has left. Once
    `told_to_stop` is set, the drain ends as it does when its time is up: the sends under way
    are recorded, and what no send has begun is handed back. DatabaseUnavailable if the
    database cannot be reached.
    """
    return _Drain(services, senders, limit, workers, standby, told_to_stop).run()


Destination = tuple[str, str]  # (platform, address)

_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _workers(count: int) -> ThreadPoolExecutor:
    """Threads for `count` sends at once, kept from one drain to the next: starting them anew
    each drain (four a second) cost a millisecond of CPU a thread."""
    with _pools_lock:
        if count not in _pools:
            _pools[count] = ThreadPoolExecutor(count, thread_name_prefix="outbox")
        return _pools[count]


@dataclass(order=True)
class _Queue:
    """One destination's claimed rows, in order; ranked for a worker by lane, then claim."""

    rank: tuple[int, int]
    destination: Destination = field(compare=False)
    rows: list[Outbox] = field(compare=False)


class _Drain:
    """One drain: claims (every CLAIM_EVERY while sends are under way), a queue per claimed
    destination, and a pool of workers each sending one destination's queue."""

    def __init__(
        self,
        services: Services,
        senders: Mapping[str, Sender],
        limit: int,
        workers: int,
        standby: timedelta | None,
        told_to_stop: threading.Event | None,
    ):
        self.services, self.senders, self.limit, self.workers = services, senders, limit, workers
        self.standby = standby
        self.told_to_stop = told_to_stop or threading.Event()
        # Claims and new sends stop then; leases are renewed until the last send ends.
        self.ends = time.monotonic() + DRAIN_TIME
        self.waiting: list[_Queue] = []  # claimed, not yet on a worker (a heap)
        self.running: dict[Future[int], Destination] = {}
        self.ranked = itertools.count()
        self.stopping = False  # a worker raised: the others take no further row
        self.held: set[int] = set()  # claimed and not yet sent, failed or handed back
        self.holding = threading.Lock()

    def run(self) -> int:
        handled = 0
        claimed_at = -math.inf
        renewed_at = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                if now - renewed_at >= RENEW_EVERY:
                    renewed_at = now
                    self._renew()
                sending = now < self.ends and not self.told_to_stop.is_set()
                if not sending and self.waiting:
                    # What no worker has begun goes back now, for another drainer (a replica,
                    # or the bot beside its sender process), not after the slowest send.
                    waiting, self.waiting = self.waiting, []
                    self._release([row for queue in waiting for row in queue.rows])
                idle = not self.running
                if sending and (idle or now - claimed_at >= CLAIM_EVERY) and self._room():
                    claimed_at = now
                    found = self._claim()
                    if not found and idle and not self.waiting:
                        return handled
                    self._queue(found)
                for queue in self._next_queues() if sending else []:
                    future = _workers(self.workers).submit(self._send, queue.rows)
                    self.running[future] = queue.destination
                if not self.running:
                    return handled  # time is up: what still waits is handed back below
                # Until the next claim is due; once no more can be claimed, until a send ends.
                pause = max(renewed_at + RENEW_EVERY - time.monotonic(), 0.0)
                if sending and self._room():
                    pause = min(pause, max(claimed_at + CLAIM_EVERY - time.monotonic(), 0.0))
                done, _ = wait(self.running, timeout=pause, return_when=FIRST_COMPLETED)
                for future in done:
                    del self.running[future]
                    handled += future.result()
        except BaseException:
            # As a drainer killed mid-send: what it holds goes again once the lease runs out.
            self.stopping = True
            raise
        finally:
            self._wait_for_sends()
            if not self.stopping:
                self._release([row for queue in self.waiting for row in queue.rows])

    def _wait_for_sends(self) -> None:
        """Until each send under way has ended and been recorded (or handed back), renewing
        their leases meanwhile: a drain stopped by an error (the database failing over) still
        holds what its workers are sending, or another replica would send it again."""
        while self.running:
            done, _ = wait(self.running, timeout=RENEW_EVERY)
            for future in done:
                del self.running[future]
            if self.running:
                try:
                    self._renew()
                except DatabaseUnavailable:
                    pass  # nothing can take the rows from a database nobody can reach either

    def _next_queues(self) -> list[_Queue]:
        """The waiting queues to start now, best ranked first, as workers are free. While a
        platform refuses our credentials, one of its destinations at a time tries it."""
        started: list[_Queue] = []
        held: list[_Queue] = []
        trying = {platform for platform, _ in self.running.values()}
        while self.waiting and len(self.running) + len(started) < self.workers:
            queue = heapq.heappop(self.waiting)
            platform = queue.destination[0]
            if platform in trying and self.services.health.refusing(platform):
                held.append(queue)
                continue
            trying.add(platform)
            started.append(queue)
        for queue in held:
            heapq.heappush(self.waiting, queue)
        return started

    def _room(self) -> bool:
        """Few enough claimed rows wait for a worker to claim more (each holds a lease; a newly
        urgent row still gets in ahead of those waiting)."""
        return sum(len(queue.rows) for queue in self.waiting) < self.limit

    def _claim(self) -> list[Outbox]:
        now = self.services.clock.now()
        # A platform refusing our credentials is tried with one message every so often,
        # not with each of its messages on every tick.
        platforms = [p for p in self.senders if self.services.health.may_send(p, now)]
        with self.holding:
            held = set(self.held)
        found = (
            _claim(self.services, platforms, self.limit, held, self.standby) if platforms else []
        )
        with self.holding:
            self.held.update(row.id or 0 for row in found)
        return found

    def _renew(self) -> None:
        with self.holding:
            held = sorted(self.held)
        if held:
            with self.services.db.unit_of_work() as uow:
                uow.outbox.renew(held, until=self.services.clock.now() + LEASE)

    def _done(self, rows: list[Outbox]) -> None:
        with self.holding:
            self.held.difference_update(row.id or 0 for row in rows)

    def _queue(self, rows: list[Outbox]) -> None:
        """`rows` (in lanes, each destination's in order) as a queue per destination. Urgent
        queues first, then in the order claimed: a channel whose escalation ping is claimed
        behind its cards is urgent, as that ping cannot go before them."""
        queues: dict[Destination, list[Outbox]] = {}
        for row in rows:
            queues.setdefault((row.platform, row.address), []).append(row)
        for destination, queued in queues.items():
            rank = (min(lane(row) for row in queued), next(self.ranked))
            heapq.heappush(self.waiting, _Queue(rank, destination, queued))

    def _send(self, rows: list[Outbox]) -> int:
        """On a worker: one destination's rows in order, until one fails or time is up; the
        rows handled. Those left are handed back at once for another drain (or replica). A
        person's direct messages queued TOGETHER_FROM or more deep go as one (together)."""
        rows = list(rows)
        index = handled = 0
        while index < len(rows):
            row = rows[index]
            if (
                self.stopping
                or time.monotonic() > self.ends
                or self.told_to_stop.is_set()
                or not self.services.health.may_send(row.platform, self.services.clock.now())
            ):
                self._release(rows[index:])
                return handled
            run = _direct_run(rows, index)
            sender = self.senders[row.platform]
            together = len(run) >= TOGETHER_FROM and self._behind(run[0])
            group = run if together else [row]
            if any(r.maybe_sent for r in group):
                arrived = _look(self.services, sender, group)
                if arrived is None:  # the platform asked us to wait before looking
                    self._done([row])
                    self._release(rows[index + 1 :])
                    return handled + 1
                self._done(arrived)
                handled += len(arrived)
                gone = {r.id for r in arrived}
                rows[index:] = [r for r in rows[index:] if r.id not in gone]
                continue  # the same place again: what did not arrive goes now, unflagged
            if together:
                went = _deliver_together(self.services, sender, run)
            else:
                went = [row] if _deliver(self.services, sender, row) else []
            self._done(went or [row])
            index += len(went) or 1
            handled += len(went) or 1
            if not went:
                self._release(rows[index:])
                return handled
        return handled

    def _behind(self, row: Outbox) -> bool:
        """`row` has waited TOGETHER_LATE past when it was queued (past STANDBY more, for a
        standby drain: what it takes has always waited that long, and one sender process
        stopping must not merge a person's messages, dropping their buttons)."""
        created = row.created_at.replace(tzinfo=row.created_at.tzinfo or UTC)
        late = TOGETHER_LATE + (self.standby or timedelta())
        return self.services.clock.now() - created >= late

    def _release(self, rows: list[Outbox]) -> None:
        self._done(rows)
        if rows and not self.stopping:
            with self.services.db.unit_of_work() as uow:
                uow.outbox.release(
                    [row.id or 0 for row in rows], now=self.services.clock.now(), by=DRAINER
                )


def recover(services: Services) -> int:
    """At start-up: messages a killed predecessor had claimed but not sent go at once, instead
    of after their lease. SQLite only, where one process is the only drainer; on PostgreSQL
    another replica may be sending them right now, so their leases stand."""
    if not services.db.is_sqlite:
        return 0
    with services.db.unit_of_work() as uow:
        released = uow.outbox.release_all_sending(now=services.clock.now())
    if released:
        log.warning("outbox: %s message(s) claimed before a restart will be sent now", released)
    return released


def hand_back(services: Services, drainer: str) -> int:
    """What `drainer` (the bot's sender process, seen to have ended) had claimed goes again at
    once, not when its lease runs out; each is looked for first, as it may have gone."""
    try:
        with services.db.unit_of_work() as uow:
            released = uow.outbox.release_all_sending(now=services.clock.now(), by=drainer)
    except DatabaseUnavailable as error:
        log.warning(
            "outbox: what the ended sender process held waits out its lease (%s s): %s",
            int(LEASE.total_seconds()),
            error,
        )
        return 0
    if released:
        log.warning(
            "outbox: %s message(s) the ended sender process held will be sent now", released
        )
    return released


def _claim(
    services: Services,
    platforms: list[str],
    limit: int,
    held: set[int],
    standby: timedelta | None = None,
) -> list[Outbox]:
    # Most claims find nothing (four a second per replica, and one after every drain): a
    # reading transaction says so without a write transaction (on SQLite, the database's one
    # writer lock, which every request's submission waits for).
    now = services.clock.now()
    due_by = now - standby if standby else now
    with services.db.reading() as uow:
        if not uow.outbox.any_due(now=due_by, platforms=platforms):
            return []
    with services.db.unit_of_work() as uow:
        return list(
            uow.outbox.claim(
                now=now,
                lease=LEASE,
                limit=limit,
                platforms=platforms,
                held=held,
                due_by=due_by,
                # The sender process is alive, or restarting: it keeps a person's order.
                strict=standby is not None,
                by=DRAINER,
            )
        )


def _item(services: Services, row: Outbox) -> OutboundItem:
    """The row as a sender sees it. A card's id is read now, not at claim time: the card may
    have been posted earlier in this very batch."""
    card = None
    if row.kind in ("card_update", "thread") and row.review_id is not None:
        with services.db.reading() as uow:
            card = uow.outbox.card(row.review_id, row.platform, row.address)
    return OutboundItem(
        kind=row.kind,
        address=row.address,
        message=Message.from_json(row.payload),
        card_id=card.message_id if card else None,
        review_id=row.review_id,
        tags=(outbox_tag(row),),
    )


def unseen(tags: Iterable[str], why: object) -> dict[str, str]:
    """A Looker's answer when the platform will not show what arrived: not looked for, so the
    messages go again (twice rather than never), each still flagged as maybe there, and the
    log says so."""
    tags = sorted(tags)
    log.warning(
        "outbox %s: cannot see whether it already arrived (%s); sending it again",
        ",".join(tags),
        why,
    )
    return dict.fromkeys(tags, UNSEEN)


def outbox_tag(row: Outbox) -> str:
    """The row's id and when it was queued (to the microsecond): unique to this row of this
    database, so a message another deployment posted to the same channel (a test bot on its
    own database, whose row ids are the same small numbers) is never taken for this one."""
    created = row.created_at.replace(tzinfo=row.created_at.tzinfo or UTC)
    return f"{row.id}@{round(created.timestamp() * 1_000_000)}"


def _deliver(services: Services, sender: Sender, row: Outbox) -> bool:
    """Send one row and record the result; False if it did not go."""
    try:
        item = _item(services, row)
    except Exception as error:  # noqa: BLE001 - any payload we cannot read: JSON, shape, fields
        # A payload we cannot read never will be: fail it (and report it) rather than let it
        # be claimed again forever, holding up every later message to that destination.
        log.error("outbox %s: unreadable payload (%s)", row.id, type(error).__name__)
        _record_failure(services, row, DeliveryError("unreadable payload", permanent=True))
        return False
    return _send_item(services, sender, item, [row])


def _send_item(services: Services, sender: Sender, item: OutboundItem, rows: list[Outbox]) -> bool:
    """Send `item`, standing for `rows` (one, or a person's direct messages together), and
    record every row as sent by it; False if it did not go (the first row takes the failure)."""
    first = rows[0]
    try:
        message_id = sender.deliver(item)
    except DeliveryError as error:
        blind = getattr(sender, "resends_blind", False)  # it cannot say what arrived
        _record_failure(services, first, error, together=rows[1:], blind=blind)
        if not (error.permanent or error.credentials or error.throttled):
            _unreachable(services, first.platform, f"a message failed: {error}", by_delivery=True)
        return False
    except Exception as error:  # noqa: BLE001 - a sender bug must not stop other deliveries
        log.exception("outbox %s: sender raised", first.id)
        _record_failure(services, first, DeliveryError(type(error).__name__))
        return False
    with services.db.unit_of_work() as uow:
        ids = [row.id or 0 for row in rows]
        uow.outbox.mark_sent(ids, at=services.clock.now(), message_id=message_id)
        _went(uow, services, first.platform)
        _save_card(uow, first, item, message_id)
    return True


def _went(uow: UnitOfWork, services: Services, platform: str) -> None:
    """A message went to `platform`: the outage it ends, in this process and, when one may be
    recorded there, in the database for every process (in `uow`, with the message marked sent).
    Nothing is written for the message that goes while none is known: the drain's hot path."""
    shared = services.health.unreachable_elsewhere(platform)
    ended = services.health.platform_ok(platform)
    if ended is not None or shared:
        uow.platforms.went(platform)
    if ended is not None:
        log.warning("%s: messages go out again", platform)


def unreachable_elsewhere(services: Services) -> None:
    """Read from the database, at most every SHARED_FOR seconds, which platforms a message sent
    by any process (the sender process, another replica) found unreachable, none having gone
    since: so this process's public pages ask a family to phone as well within seconds of it,
    not at its own platform check, a minute later. Kept as last read if the database cannot be
    read now. An outage a message sent here found ends once a message another process sent
    went (it cleared the database)."""
    read_at = services.health.elsewhere_due()
    if read_at is None:
        return
    try:
        with services.db.reading() as uow:
            found = uow.platforms.unreachable_now()
    except DatabaseUnavailable:
        return
    for platform in services.health.elsewhere(found, read_at=read_at):
        log.warning("%s: messages go out again (as another process found)", platform)


def _save_card(uow: UnitOfWork, row: Outbox, item: OutboundItem, message_id: str | None) -> None:
    """Where `row`'s card now is, if posting it posted the card (a card, or an update whose
    card never went out)."""
    if (
        message_id
        and item.review_id is not None
        and (row.kind == "card" or (row.kind == "card_update" and item.card_id is None))
    ):
        uow.outbox.save_card(item.review_id, row.platform, row.address, message_id)


def _look(services: Services, sender: Sender, rows: list[Outbox]) -> list[Outbox] | None:
    """Of `rows` (about to go to one destination), those flagged maybe_sent that the platform
    shows already arrived, recorded as sent now; the others go now. Only those it was really
    looked for and not found are flagged no longer: one the platform would not show us (the
    bot removed from the channel, a sender that cannot look: Teams) may still be there, and
    stays flagged, so that a card failed after it is never posted again (reviews.channels).
    None when the platform asks us to wait before it shows us: the first row waits as it
    asked, until LOOK_ATTEMPTS, after which they go without looking."""
    maybe = [row for row in rows if row.maybe_sent]
    look = getattr(sender, "arrived", None)  # a Looker's
    found: dict[str, str] | None = None  # None: not looked for at all
    items: list[OutboundItem] = []
    try:
        items = [_item(services, row) for row in maybe]
        if look is not None:
            found = look(items)
    except DeliveryError as error:
        if rows[0].attempts < LOOK_ATTEMPTS:
            # The wait a platform asks for before a look is capped: the look only saves a
            # duplicate, and must not hold a ping back for long.
            wait = min(error.retry_after, LOOK_WAIT_MOST) if error.retry_after else None
            looking = DeliveryError(f"look: {error}", retry_after=wait, throttled=True)
            _record_failure(services, rows[0], looking)
            return None
        log.warning("outbox %s: still cannot look (%s); sending it again", rows[0].id, error)
    except Exception as error:  # noqa: BLE001 - unreadable, or a looker's bug: send as before
        log.warning("outbox %s: cannot look (%s); sending it", rows[0].id, type(error).__name__)
    # `items` is empty when one could not be read; then nothing was looked for either.
    answers = {outbox_tag(row): (found or {}).get(outbox_tag(row)) for row in maybe}
    arrived = [(r, item) for r, item in zip(maybe, items, strict=False) if answers[outbox_tag(r)]]
    with services.db.unit_of_work() as uow:
        for row, item in arrived:
            message_id = answers[outbox_tag(row)]
            uow.outbox.mark_sent([row.id or 0], at=services.clock.now(), message_id=message_id)
            _save_card(uow, row, item, message_id)
        if found is not None:
            not_found = [row.id or 0 for row in maybe if outbox_tag(row) not in found]
            uow.outbox.flag_maybe_sent(not_found, False)
        if arrived:
            # A message the platform took is the news that ends an outage, however learned.
            _went(uow, services, rows[0].platform)
    for row in maybe:
        row.maybe_sent = False  # looked for (or not to be) in this drain: it goes now
    if arrived:
        ids = ",".join(str(row.id) for row, _ in arrived)
        log.info("outbox %s: already arrived; not sent again", ids)
    return [row for row, _ in arrived]


def _direct_run(rows: list[Outbox], start: int) -> list[Outbox]:
    """The direct messages in `rows` from `start` on, up to the first of any other kind."""
    run: list[Outbox] = []
    for row in rows[start : start + TOGETHER_MOST]:
        if row.kind != "direct":
            break
        run.append(row)
    return run


def _deliver_together(services: Services, sender: Sender, rows: list[Outbox]) -> list[Outbox]:
    """Send a person's queued direct messages as one; each row is recorded as sent by it.
    The rows that went: none if it did not go (the first row takes the failure, the rest wait
    their turn); only the first when one of them cannot be read (the first goes on its own, as
    _deliver fails an unreadable one, and the rest are for the caller to send next)."""
    try:
        items = [_item(services, row) for row in rows]
    except Exception:  # noqa: BLE001 - an unreadable payload: one by one, as _deliver fails it
        return rows[:1] if _deliver(services, sender, rows[0]) else []
    count = _fitting([item.message for item in items])
    if count < 2:  # the first alone fills a message: it goes as it is
        return rows[:1] if _deliver(services, sender, rows[0]) else []
    rows, items = rows[:count], items[:count]
    item = OutboundItem(
        kind="direct",
        address=rows[0].address,
        message=Message(text=together_text([i.message for i in items])),
        card_id=None,
        review_id=None,
        tags=tuple(outbox_tag(row) for row in rows),
    )
    if not _send_item(services, sender, item, rows):
        return []
    log.info("outbox: %s direct messages to one person sent as one", len(rows))
    return rows


def _fitting(messages: list[Message]) -> int:
    """How many of `messages`, from the first, one together message shows in full."""
    count = len(messages)
    while count > 1 and _shown_length(together_text(messages[:count])) > TOGETHER_CHARS:
        count -= 1
    return count


def _shown_length(text: str) -> int:
    """`text`'s length once Slack's mrkdwn escaping has made each & five characters, < and >
    four."""
    return len(text) + 4 * text.count("&") + 3 * (text.count("<") + text.count(">"))


def together_text(messages: list[Message]) -> str:
    """One message standing for several: a line each, with where the patient is."""
    lines = []
    for message in messages:
        review = message.review
        where = ""
        if review is not None:
            where = f" {review.ward}" + (f" bed {review.bed}" if review.bed else "")
        lines.append(f"• {message.text}{where}")
    heading = (
        f"{len(messages)} messages for you at once. Acknowledge each request on its card "
        "in the outreach channel:"
    )
    return "\n".join([heading, *lines])


def _record_failure(
    services: Services,
    row: Outbox,
    error: DeliveryError,
    *,
    together: Sequence[Outbox] = (),
    blind: bool = False,
) -> None:
    """`row`'s attempt failed (with the rows that went `together` with it, handed back by the
    caller: on an uncertain failure, each of them may have arrived too). `blind`: its sender
    cannot say whether a message arrived, so one that may have arrived each time is not resent
    for a day (a Teams card landed every minute while the connector answered late)."""
    now = services.clock.now()
    with services.db.unit_of_work() as uow:
        stored = uow.outbox.get(row.id or 0)
        assert stored is not None
        stored.last_error = str(error)[:500]
        if error.uncertain:
            stored.maybe_sent = True
            uow.outbox.flag_maybe_sent([r.id or 0 for r in together], True)
        if stored.state == "dropped":
            return  # the review was acknowledged or closed meanwhile: no retry wanted
        if error.credentials:
            _hold_for_credentials(uow, services, stored, error)
            return
        given_up = _given_up(uow, stored, error, now, blind=blind)
        if given_up is not None:
            _fail(uow, services, stored, f"{_attempts(stored.attempts)}{given_up}", error)
            return
        if stored.attempts >= ALARM_ATTEMPTS:
            _held_up(uow, services, stored, error)
        delay = error.retry_after if error.retry_after is not None else backoff(stored.attempts)
        stored.state = "pending"
        stored.claimed_by = None  # no drainer holds it now
        stored.next_attempt_at = now + timedelta(seconds=delay)
        log.warning(
            "outbox %s%s: attempt %s failed (%s); retry in %.0fs",
            row.id,
            _about(row),
            stored.attempts,
            error,
            delay,
        )


def _given_up(
    uow: UnitOfWork, row: Outbox, error: DeliveryError, now: datetime, *, blind: bool = False
) -> str | None:
    """Whether `row` is failed for good after this failure (what to add to "after N attempts"
    to say why), or None while it is still worth trying."""
    if error.permanent:
        return ""
    if blind and error.uncertain and row.attempts >= ALARM_ATTEMPTS:
        return f" (each may have arrived; {row.platform} cannot be asked, so not sent again)"
    created = row.created_at.replace(tzinfo=row.created_at.tzinfo or UTC)
    if now - created >= RETRY_FOR:
        return f" over {RETRY_FOR.total_seconds() / 3600:g} hours"
    if (
        row.attempts >= ALARM_ATTEMPTS
        and not error.throttled
        and uow.outbox.went_since(
            platform=row.platform,
            queued_after=row.id or 0,
            since=now - timedelta(seconds=MAX_BACKOFF),
        )
        # ... and has for BACK_FOR: a platform coming back unevenly answers a few 503s still,
        # and a card held up through the outage was failed at the first of them.
        and uow.outbox.went_since(
            platform=row.platform,
            queued_after=row.id or 0,
            since=created,
            until=now - BACK_FOR,
        )
    ):
        return f" while later messages on {row.platform} went for {_minutes(BACK_FOR)}"
    return None


def _fail(
    uow: UnitOfWork, services: Services, row: Outbox, after: str, error: DeliveryError
) -> None:
    """`row` will never go: mark it, audit it, report it, and do what follows from it."""
    now = services.clock.now()
    row.state = "failed"
    log.error("outbox %s (%s) failed: %s", row.id, _label(row), error)
    _audit(uow, row, "delivery_failed", error, now)
    rerouted = _undeliverable(uow, services, row, str(error))
    if not _is_alarm(row):
        notify.to_digest_channel(
            uow,
            services.routes,
            key=f"failure:{row.id}",
            at=now,
            review_id=row.review_id,
            message=Message(
                text=f"{_described(row)} could not be delivered after {after}: {error}"
                + (f"; it went to {rerouted} instead" if rerouted else "")
            ),
        )


def _held_up(uow: UnitOfWork, services: Services, row: Outbox, error: DeliveryError) -> None:
    """`row` has failed ALARM_ATTEMPTS times and is still tried: said once (the digest channel's
    key is taken after), as promptly as a message failed for good is."""
    now = services.clock.now()
    alarm = _is_alarm(row)  # held up, it raises no alarm of its own: only the log says it
    if alarm:
        first = row.attempts == ALARM_ATTEMPTS
    else:
        urgent = row.review_id is not None
        hours = f"{RETRY_FOR.total_seconds() / 3600:g} hours"
        first = notify.to_digest_channel(
            uow,
            services.routes,
            key=f"delayed:{row.id}",
            at=now,
            review_id=row.review_id,
            message=Message(
                text=f"{_described(row)} has not gone after {_attempts(row.attempts)}: "
                f"{error}. It is still being tried, and "
                f"goes as soon as {row.platform} takes it (for up to {hours})."
                + (" Meanwhile, bleep the outreach team for anything urgent." if urgent else "")
            ),
        )
    if first:
        log.error(
            "outbox %s (%s) not delivered after %s: %s; still trying",
            row.id,
            _label(row),
            _attempts(row.attempts),
            error,
        )
    if first and not alarm:
        _audit(uow, row, "delivery_delayed", error, now)
    if error.throttled:
        return  # the platform is up and pacing us (a surge): not a ping held up by an outage
    if _is_held_up(uow, now, row):
        _not_reaching(uow, services, row, now)
    if row.kind == "direct":
        # The person's later pings wait behind this one, untried: each is held up as well once
        # it has waited as long. Looked at with each retry of this one (a minute apart, or as
        # the platform asks): those that came to HELD_UP_FOR since about the last retry.
        for behind in uow.outbox.waiting_behind(
            row, queued_after=now - HELD_UP_FOR - BEHIND_LOOKED_AT, queued_by=now - HELD_UP_FOR
        ):
            _not_reaching(uow, services, behind, now)


def _not_reaching(uow: UnitOfWork, services: Services, row: Outbox, now: datetime) -> None:
    """A direct message of an escalation level failed for good, or is held up (not gone after
    ALARM_ATTEMPTS, about two minutes, its platform down; or waiting that long behind one that
    is): when no one at its level was reached, the next level is called now (a held-up ping had
    kept the next level waiting its own time)."""
    if row.kind == "direct" and row.review_id is not None and row.key.startswith("esc:"):
        _, _, level, repeat = row.key.split(":", 4)[:4]
        escalation.nobody_reached(
            uow,
            services,
            row.review_id,
            int(level),
            int(repeat),
            now,
            held_up=partial(_is_held_up, uow, now),
        )


def _is_held_up(uow: UnitOfWork, now: datetime, row: Outbox) -> bool:
    """Whether `row`, not failed, is held up: queued HELD_UP_FOR ago and tried ALARM_ATTEMPTS
    times since (a short Retry-After makes those tries quicker), or untried behind a message to
    its destination that is."""
    if row.state not in ("pending", "sending"):
        return False  # sent, or dropped (its request acknowledged)
    created = row.created_at.replace(tzinfo=row.created_at.tzinfo or UTC)
    if now - created < HELD_UP_FOR:
        return False
    return row.attempts >= ALARM_ATTEMPTS or uow.outbox.held_up_before(row, attempts=ALARM_ATTEMPTS)


def _audit(uow: UnitOfWork, row: Outbox, kind: str, error: DeliveryError, at: datetime) -> None:
    uow.events.record(
        review_id=row.review_id,
        kind=kind,
        at=at,
        outbox_id=row.id,
        platform=row.platform,
        message_kind=row.kind,
        error=str(error)[:200],
    )


# The keys of the alarms queued to the digest channel (notify.to_digest_channel's callers).
ALARM_KEYS = ("failure:", "delayed:", "gap:", "unreached:", "broken:", "credentials:", "rota-gap:")


def _is_alarm(row: Outbox) -> bool:
    """An alarm for the managers (about another message, a cover gap, a broken request): not
    alarmed about in turn. Held up, it waits behind the message or outage it reports, and an
    alarm about it would come only after both."""
    return row.key.startswith(ALARM_KEYS)


def _hold_for_credentials(
    uow: UnitOfWork, services: Services, row: Outbox, error: DeliveryError
) -> None:
    """Keep the message (uncounted) until the platform takes the bot's credentials again."""
    row.state = "pending"
    row.next_attempt_at = services.clock.now() + CREDENTIALS_RETRY
    row.attempts = max(row.attempts - 1, 0)
    credentials_refused(uow, services, row.platform, error, retry_at=row.next_attempt_at)


def credentials_refused(
    uow: UnitOfWork, services: Services, platform: str, error: DeliveryError, *, retry_at: datetime
) -> None:
    """Raise the alarm that `platform` refuses the bot: /healthz, the log at ERROR once per
    outage, and every other platform's digest channel (the refusing one cannot carry it), once
    an hour across replicas while it lasts."""
    now = services.clock.now()
    if services.health.credentials_refused(platform, str(error), retry_at=retry_at):
        log.error(
            "%s refuses the bot's credentials (%s): messages to %s wait until they are fixed",
            platform,
            error,
            platform,
        )
    others = tuple(route for route in services.routes if route.platform != platform)
    notify.to_digest_channel(
        uow,
        others,
        key=f"credentials:{platform}:{now:%Y-%m-%dT%H}",
        at=now,
        message=Message(text=_refused_alarm(platform, error)),
    )


def _refused_alarm(platform: str, error: DeliveryError) -> str:
    """The digest channel's line: a chat platform carries requests too; Notify and the paging
    gateway carry only texts and pages, while direct messages still go."""
    if platform in (texts.NOTIFY, texts.PAGER):
        name = "Notify" if platform == texts.NOTIFY else "The paging gateway"
        return (
            f"{name} refuses the bot's credentials ({error}): no text or page can go that way "
            "until IT fixes them; direct messages still go. Held texts go once it works again, "
            "unless acknowledged meanwhile. Meanwhile, bleep the outreach team for anything "
            "urgent."
        )
    return (
        f"{platform.capitalize()} refuses the bot's credentials ({error}): nothing "
        "can be posted there until IT fixes them, and requests raised there may not reach "
        "the outreach team. Held messages go once it works again. Meanwhile, bleep the "
        "outreach team for anything urgent."
    )


def check_platforms(services: Services, senders: Mapping[str, Sender]) -> None:
    """Ask each platform that can be asked (a sender with `check()`, which must really reach
    the platform) whether it takes the bot's credentials, so a revoked token or an unreachable
    platform shows in /healthz and the log before a request needs it, also in a process that
    sends nothing (the bot beside its sender process). DatabaseUnavailable if the alarm cannot
    be queued."""
    for platform, sender in senders.items():
        check = getattr(sender, "check", None)
        if check is None:
            continue
        try:
            check()
        except DeliveryError as error:
            if error.credentials:
                with services.db.unit_of_work() as uow:
                    credentials_refused(
                        uow, services, platform, error, retry_at=services.clock.now()
                    )
            else:
                _unreachable(services, platform, str(error))
            continue
        # A check reaches the platform itself (Slack's auth.test, a Bot Connector call) with
        # the bot's credentials: it ends their refusal, but not an outage a message found.
        if services.health.platform_answered(platform) is not None:
            log.warning("%s: reachable and accepting the bot's credentials again", platform)


def _unreachable(
    services: Services, platform: str, reason: str, *, by_delivery: bool = False
) -> None:
    """`platform` cannot be reached, or answers 5xx: /healthz warns (and a public page asks a
    family to phone as well, when it is the trust's only platform) until a message goes there,
    or, when only its check found it, until the check reaches it; the log says so once."""
    if by_delivery:  # every process is to know, the bot's public pages first
        with services.db.unit_of_work() as uow:
            uow.platforms.unreachable(platform, reason, at=services.clock.now())
    if services.health.unreachable(platform, reason, by_delivery=by_delivery):
        log.error(
            "%s cannot be reached (%s); everything else carries on and messages to %s wait "
            "and are retried",
            platform,
            reason,
            platform,
        )


def _undeliverable(uow: UnitOfWork, services: Services, row: Outbox, reason: str) -> str:
    """A message that will never go: what follows from that. A direct message's text or page
    is due at once; when nobody at an escalation level could be reached, the ladder moves on
    at once; a family's "worse" a ward's channel refused goes to the outreach channel. Where
    it went instead, if anywhere."""
    now = services.clock.now()
    fallback.undelivered(uow, row, now)
    _not_reaching(uow, services, row, now)
    if row.review_id is not None and callback.is_callback(row.review_id, row.key):
        callback.not_delivered(uow, services, row)
    if checkins.worse_not_delivered(uow, services, row, reason, now):
        return "the outreach channel"
    return ""


def _label(row: Outbox) -> str:
    """For the log: "card to slack about RR-0042"."""
    return f"{row.kind} to {row.platform}{_about(row)}"


def _described(row: Outbox) -> str:
    """For the managers: "A card message on slack about RR-0042 to C0123"."""
    return f"A {row.kind} message on {row.platform}{_about(row)}{_to(row)}"


def _about(row: Outbox) -> str:
    return f" about {format_reference(row.review_id)}" if row.review_id is not None else ""


def _to(row: Outbox) -> str:
    """Where a message for a channel was going (a channel's id names no one), and what a
    message about no request was: the alarm must say what was lost."""
    if row.kind not in ("card", "card_update", "thread", "channel"):
        return ""  # a person's conversation, or their mobile or pager: not for a channel
    what = {
        checkins.WORSE_KEY: ' (a public page\'s "worse" check-in)',
        "checkin-prompt:": " (the daily check-in prompt)",
        "digest": " (the daily digest)",
    }
    label = next((text for prefix, text in what.items() if row.key.startswith(prefix)), "")
    return f" to {row.address}{label}"


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:g} minutes"


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


def backoff(attempts: int) -> float:
    """Seconds before the next try: 1, 2, 4 ... capped at a minute."""
    return float(min(2 ** min(max(attempts - 1, 0), 16), MAX_BACKOFF))
