"""A major incident: many requests in a minute across three replicas on one PostgreSQL.

Shared by the surge benchmark (bench/surge.py, figures) and its slow test (invariants). Each
request is a signed form submission POSTed to one of the replicas in turn, as a load balancer
would; Slack is a fake that limits posts to each channel as Slack does. Optionally one replica
is killed with SIGKILL halfway through; the load balancer then sends to the other two.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sqlmodel import col, func, select

from handlers.slack.forms import REQUEST_FORM
from storage.database import Database
from storage.tables import Outbox, Review
from tests.support.builders import on_rota
from tests.support.process import BotProcess, free_port, start_slack_bot
from tests.support.slack_requests import request_form, view_submission
from tests.support.timed_slack import RateLimitedSlack

ALEX, NURSE, CHANNEL = "U01ALEX", "U0WARDNURSE", "C0OUTREACH"
# Level 0 only, within the run: the first direct message is what the surge measures.
POLICY = """\
[[levels]]
after = "0s"
notify = ["outreach"]
[[levels]]
after = "1h"
notify = ["outreach"]
channel = true
repeat_every = "24h"  # beyond the test: the ladder must repeat
[urgency.standard]
news2_at_least = 0
attend_within = "1h"
"""
RAISED = re.compile(r"(RR-\d+) raised")
REFERENCE = re.compile(r"RR-\d+")


@dataclass
class Surge:
    answers: Counter[str] = field(default_factory=Counter)  # raised / not confirmed / no answer
    told_raised: set[str] = field(default_factory=set)  # references the nurses were given
    stored: dict[str, float] = field(default_factory=dict)  # reference -> raised_at (epoch)
    first_dm: dict[str, float] = field(default_factory=dict)  # reference -> seconds late
    dm_copies: Counter[str] = field(default_factory=Counter)  # level-0 DMs per reference
    card_copies: Counter[str] = field(default_factory=Counter)  # cards posted per reference
    held_at_kill: int = 0  # messages under lease when the replica was killed
    rate_limited: int = 0  # 429s the fake Slack answered
    raise_seconds: float = 0.0
    cards_done_after: float | None = None  # seconds from the first request to the last card

    @property
    def sent_twice(self) -> int:
        return sum(n - 1 for n in [*self.dm_copies.values(), *self.card_copies.values()] if n > 1)


def start_replica(fake: RateLimitedSlack, url: str, policy: Path) -> tuple[BotProcess, str]:
    port = free_port()
    bot = start_slack_bot(fake.url, url, policy, OUTREACH_CHANNEL=CHANNEL, PORT=str(port))
    return bot, f"http://127.0.0.1:{port}/slack/events"


def run_surge(
    url: str,
    workdir: Path,
    *,
    count: int,
    over: float,
    kill: bool,
    wait: float,
    latency: float = 0.0,
) -> Surge:
    """Raise `count` requests over `over` seconds; wait up to `wait` seconds for every card.
    Slack answers each call after `latency` seconds (real Slack: 0.1-0.3)."""
    policy = workdir / "surge.toml"
    policy.write_text(POLICY)
    db = Database(url)
    on_rota(db, "outreach", "Alex Carter", ALEX, datetime.now(UTC) - timedelta(hours=1))
    surge = Surge()
    replicas: list[tuple[BotProcess, str]] = []
    try:
        with RateLimitedSlack(latency=latency) as fake:
            try:
                # Inside the try: a replica that cannot start stops those already running.
                for _ in range(3):
                    replicas.append(start_replica(fake, url, policy))
                began = time.time()
                _submit(surge, replicas, db, count, over, kill)
                surge.raise_seconds = time.time() - began
                _wait_for_cards(surge, db, fake, began, wait)
            finally:
                for bot, _ in replicas:
                    bot.stop()
            _read(surge, db, fake)
            surge.rate_limited = fake.limited
    finally:
        db.dispose()
    return surge


def _submit(
    surge: Surge,
    replicas: list[tuple[BotProcess, str]],
    db: Database,
    count: int,
    over: float,
    kill: bool,
) -> None:
    live = [endpoint for _, endpoint in replicas]
    lock = threading.Lock()
    numbers = iter(range(count))
    began = time.monotonic()
    form = request_form(news2="")

    def client() -> None:
        with requests.Session() as session:
            while True:
                with lock:
                    number = next(numbers, None)
                    if number is None:
                        return
                    if kill and number == count // 2 and len(live) == 3:
                        replicas[1][0].kill()  # SIGKILL mid-surge, its sender process too
                        surge.held_at_kill = _held(db)
                        live.remove(replicas[1][1])
                    endpoint = live[number % len(live)]
                time.sleep(max(0.0, began + number * over / count - time.monotonic()))
                submission = view_submission(
                    REQUEST_FORM, form, user_id=NURSE, view_id=f"VSURGE{number}"
                )
                try:
                    answer = session.post(
                        endpoint, data=submission.body.encode(), headers=submission.headers
                    ).text
                except requests.ConnectionError:
                    answer = ""  # Slack shows the nurse its own error: nothing said was raised
                told = RAISED.search(answer)
                with lock:
                    if told:
                        surge.told_raised.add(told[1])
                    surge.answers[
                        "raised"
                        if told
                        else "NOT CONFIRMED"
                        if "NOT CONFIRMED" in answer
                        else "no answer"
                    ] += 1

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _held(db: Database) -> int:
    with db.reading() as uow:
        return uow.session.exec(select(func.count()).where(col(Outbox.state) == "sending")).one()


def _wait_for_cards(
    surge: Surge, db: Database, fake: RateLimitedSlack, began: float, wait: float
) -> None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with db.reading() as uow:
            stored = uow.session.exec(select(func.count()).select_from(Review)).one()
        if len({ref for ref, _ in _cards(fake)}) >= stored:
            surge.cards_done_after = time.time() - began
            return
        time.sleep(0.5)


def _cards(fake: RateLimitedSlack) -> list[tuple[str, float]]:
    """(reference, arrival) of every card posted to the channel (not thread lines)."""
    found = []
    for arrived, call in list(fake.arrivals):
        body = call.body
        if (
            call.method == "chat.postMessage"
            and body.get("channel") == CHANNEL
            and "thread_ts" not in body
            and not call.answer.get("error")
        ):
            match = REFERENCE.search(str(body.get("text", "")))
            if match:
                found.append((match[0], arrived))
    return found


def _read(surge: Surge, db: Database, fake: RateLimitedSlack) -> None:
    with db.reading() as uow:
        for review in uow.session.exec(select(Review)).all():
            surge.stored[f"RR-{review.id:04d}"] = review.raised_at.timestamp()
    for arrived, (recipient, reference, level, _repeat) in fake.pings():
        if recipient == ALEX and level == 0:
            surge.dm_copies[reference] += 1
            if reference not in surge.first_dm:
                surge.first_dm[reference] = arrived - surge.stored.get(reference, arrived)
    surge.card_copies.update(reference for reference, _ in _cards(fake))
