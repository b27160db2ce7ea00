"""Texts and pages from the real bot, as processes: three replicas at once, and a kill -9.

`python bot.py` runs against a fake Slack, a fake GOV.UK Notify and a fake paging gateway.
Every level texts (sms = true) and every direct message has a 1 s fallback, so each text can
be owed for two reasons at once on three replicas: each (person, request, level) must still
arrive exactly once.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reviews import service
from reviews.clock import SystemClock
from reviews.policy import load_policy
from storage.database import Database
from tests.support.builders import NURSE, OUTREACH, make_services, on_rota, request, unsent
from tests.support.fake_texts import FakeNotify, FakePager, texting_settings, texts_arrived
from tests.support.process import BotProcess, start_slack_bot
from tests.support.timed_slack import TimedSlack
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

POLICY = """\
[[levels]]
after = "0s"
notify = ["outreach"]
sms = true
[[levels]]
after = "2s"
notify = ["outreach", "outreach-backup"]
sms = true
[[levels]]
after = "4s"
notify = ["site-manager"]
repeat_every = "24h"  # beyond the test: the ladder must repeat
[fallback]
after = "1s"
[urgency.standard]
news2_at_least = 0
attend_within = "1h"
"""
ALEX_PAGER, SAM_MOBILE, MO_PAGER = "BLEEP-2345", "+447700900456", "BLEEP-7788"


@pytest.fixture
def outside():
    with TimedSlack() as slack, FakeNotify() as notify, FakePager() as pager:
        yield slack, notify, pager


@pytest.fixture
def ward(database_url, tmp_path: Path):
    policy_file = tmp_path / "escalation.toml"
    policy_file.write_text(POLICY)
    db = Database(database_url)
    start = datetime.now(UTC) - timedelta(hours=3)
    for role, name, user, contact in (
        ("outreach", "Alex Carter", "U01ALEX", {"pager": ALEX_PAGER}),
        ("outreach-backup", "Sam Patel", "U01SAM", {"mobile": SAM_MOBILE}),
        ("site-manager", "Mo Reid", "U01MO", {"pager": MO_PAGER}),
    ):
        on_rota(db, role, name, user, start, hours=4, contact=contact)
    services = make_services(db, SystemClock(), policy=load_policy(policy_file))
    # Level 0 fires in the raising transaction: here, as in the bot, with texts configured.
    yield dataclasses.replace(services, texting=("pager", "notify")), policy_file
    db.dispose()


def start_bot(outside, database_url: str, policy_file: Path) -> BotProcess:
    slack, notify, pager = outside
    return start_slack_bot(slack.url, database_url, policy_file, **texting_settings(notify, pager))


def texts(notify: FakeNotify, pager: FakePager) -> Counter:
    """(to, reference, level) -> how many times it arrived, at Notify and the gateway."""
    return Counter(
        (to, reference, level) for to, reference, level, _ in texts_arrived(notify, pager)
    )


def expected(reference: str) -> set[tuple[str, str, int]]:
    return {
        (ALEX_PAGER, reference, 0),
        (ALEX_PAGER, reference, 1),
        (SAM_MOBILE, reference, 1),
        (MO_PAGER, reference, 2),  # level 2 does not say sms: its 1 s fallback pages Mo
    }


def wait_for_texts(notify, pager, wanted: set, timeout: float) -> None:
    eventually(lambda: wanted <= set(texts(notify, pager)), f"texts {sorted(wanted)}", timeout)


def raise_one(services) -> str:
    review = service.raise_review(services=services, request=request(news2=""), by=NURSE).review
    return f"RR-{review.id:04d}"


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_three_replicas_text_each_person_once_per_level(outside, ward, database_url):
    _slack, notify, pager = outside
    services, policy_file = ward
    bots = []
    try:
        bots = [start_bot(outside, database_url, policy_file) for _ in range(3)]
        references = []
        for _ in range(8):  # due times spread over the second, so replicas contend
            references.append(raise_one(services))
            time.sleep(0.1)
        wanted = set().union(*(expected(r) for r in references))
        wait_for_texts(notify, pager, wanted, timeout=60)
        for reference in references:
            service.acknowledge(services=services, review_id=int(reference[3:]), by=OUTREACH)
        time.sleep(2)
    finally:
        for bot in bots:
            bot.stop()
    arrived = texts(notify, pager)
    assert set(arrived) == wanted
    assert {key: n for key, n in arrived.items() if n > 1} == {}
    for bot in bots:  # each replica says once what it will text through
        said = [line for line in bot.log if "texts and pages:" in line]
        assert len(set(said)) == 1 and "Notify configured, paging gateway configured" in said[0]


def test_killed_mid_ladder_and_restarted_texts_each_person_once(outside, ward, database_url):
    _slack, notify, pager = outside
    services, policy_file = ward
    bot = start_bot(outside, database_url, policy_file)
    try:
        reference = raise_one(services)
        wait_for_texts(notify, pager, {(ALEX_PAGER, reference, 0)}, timeout=6)
        # Past the page's "sent" mark: a kill between the gateway's answer and that mark is
        # the outbox's one at-least-once point (docs/escalation.md), not what this tests.
        eventually(lambda: not unsent(services.db, [int(reference[3:])]), "level 0 recorded", 5)
    finally:
        bot.kill()
    time.sleep(5)  # levels 1 and 2 fall due while the bot is down
    # The kill landed mid-ladder: the last level (4 s) had not gone. On a loaded machine the
    # sent mark can come late enough for level 1 (2 s) to go before the kill, and its sender
    # process, alive until it sees the bot gone, to send it; that changes nothing below.
    before = {level for _to, _reference, level in texts(notify, pager)}
    assert 0 in before and 2 not in before, before
    bot = start_bot(outside, database_url, policy_file)
    try:
        wait_for_texts(notify, pager, expected(reference), timeout=30)
        service.acknowledge(services=services, review_id=int(reference[3:]), by=OUTREACH)
        time.sleep(2)
    finally:
        bot.stop()
    arrived = texts(notify, pager)
    assert set(arrived) == expected(reference)
    assert {key: n for key, n in arrived.items() if n > 1} == {}


def test_start_up_warns_once_when_the_policy_asks_for_texts_that_nothing_can_send(
    outside, ward, database_url
):
    slack, _notify, _pager = outside
    _services, policy_file = ward
    bot = start_slack_bot(slack.url, database_url, policy_file, DIGEST_CHANNEL="")
    try:
        time.sleep(1)  # said before it listens; a second saying would come meanwhile
    finally:
        bot.stop()
    said = [line for line in bot.log if "texts and pages:" in line or "texted" in line]
    assert [line.split(": ", 1)[1].strip() for line in said] == [
        "texts and pages: GOV.UK Notify not configured, paging gateway not configured",
        "the escalation policy asks for texts or pages (sms = true or [fallback]), but neither "
        "NOTIFY_API_KEY nor PAGER_WEBHOOK_URL is set: nothing will be texted",
    ]
