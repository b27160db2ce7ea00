"""The real bot, as processes: killed mid-ladder, three replicas at once, a failing Slack.

Each test starts `python bot.py` against a fake Slack Web API and raises reviews through
reviews.service on the same database (the process under test is the bot). The policy is in
seconds: levels at 0s, 2s, 4s and 6s, the last repeating every 2s. Every escalation message is
identified by (recipient, review, level, repeat) and counted at the fake Slack.
"""

from __future__ import annotations

import re
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
from tests.support.fake_slack import FakeSlack
from tests.support.process import BotProcess, start_slack_bot
from tests.support.timed_slack import TimedSlack
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

POLICY = """\
[[levels]]
after = "0s"
notify = ["outreach"]
[[levels]]
after = "2s"
notify = ["outreach", "outreach-backup"]
channel = true
[[levels]]
after = "4s"
notify = ["icu-registrar"]
[[levels]]
after = "6s"
notify = ["site-manager"]
repeat_every = "2s"
[urgency.standard]
news2_at_least = 0
attend_within = "1h"
"""
ALEX, SAM, IRIS, MO, CHANNEL = "U01ALEX", "U01SAM", "U01IRIS", "U01MO", "C0OUTREACH"


@pytest.fixture
def fake():
    with TimedSlack() as slack:
        yield slack


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "escalation.toml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def ward(database_url, policy_file):
    """Services on the bot's database, as a ward's Slack would reach them, with the rota."""
    db = Database(database_url)
    # Shifts that began hours ago, so the bot has no handover to announce.
    start = datetime.now(UTC) - timedelta(hours=3)
    for role, name, user in (
        ("outreach", "Alex Carter", ALEX),
        ("outreach-backup", "Sam Patel", SAM),
        ("icu-registrar", "Iris Khan", IRIS),
        ("site-manager", "Mo Reid", MO),
    ):
        on_rota(db, role, name, user, start, hours=4)
    yield make_services(db, SystemClock(), policy=load_policy(policy_file))
    db.dispose()


def start_bot(
    fake: FakeSlack, database_url: str, policy_file: Path, digest_channel: str = "C0DIGEST"
) -> BotProcess:
    return start_slack_bot(fake.url, database_url, policy_file, DIGEST_CHANNEL=digest_channel)


def raise_one(ward) -> tuple[str, datetime]:
    review = service.raise_review(
        services=ward, request=request(caller="staff", news2=""), by=NURSE
    ).review
    return f"RR-{review.id:04d}", review.raised_at


def expected_ladder(reference: str, repeats: int) -> set[tuple[str, str, int, int]]:
    keys = {
        (ALEX, reference, 0, 0),
        (ALEX, reference, 1, 0),
        (SAM, reference, 1, 0),
        (CHANNEL, reference, 1, 0),
        (IRIS, reference, 2, 0),
    }
    return keys | {(MO, reference, 3, repeat) for repeat in range(repeats + 1)}


def assert_each_once(fake: TimedSlack, reference: str) -> Counter:
    counts = Counter(key for _, key in fake.pings() if key[1] == reference)
    doubled = {key: n for key, n in counts.items() if n > 1}
    assert not doubled, f"sent more than once: {doubled}"
    repeats = max(key[3] for key in counts if key[2] == 3)
    assert set(counts) == expected_ladder(reference, repeats)
    return counts


def test_killed_mid_ladder_and_restarted_nothing_lost_nothing_doubled(
    fake, ward, database_url, policy_file
):
    bot = start_bot(fake, database_url, policy_file)
    try:
        reference, _raised = raise_one(ward)
        fake.wait_for_ping((SAM, reference, 1, 0), timeout=6)
        # Level 1's deliveries recorded as sent before level 2 is due (a message killed
        # between its arrival and that record is the next test's).
        eventually(lambda: not unsent(ward.db, [int(reference[3:])]), "level 1 recorded", 5)
    finally:
        bot.kill()
    time.sleep(4)  # levels 2 (4s) and 3 (6s) fall due while the bot is down
    # The kill landed mid-ladder: the last level had not fired. (On a loaded machine level 1
    # can arrive late enough for level 2 to go before the kill; that changes nothing below.)
    assert 3 not in {key[2] for _, key in fake.pings()}

    bot = start_bot(fake, database_url, policy_file)
    restarted = time.time()
    try:
        level_2 = fake.wait_for_ping((IRIS, reference, 2, 0), timeout=5)
        level_3 = fake.wait_for_ping((MO, reference, 3, 0), timeout=5)
        fake.wait_for_ping((MO, reference, 3, 2), timeout=8)
        service.acknowledge(services=ward, review_id=int(reference[3:]), by=OUTREACH)
        acknowledged = time.time()
        time.sleep(3)  # more than a repeat interval: nothing more may come
    finally:
        bot.stop()
    # Both fell due while the bot was down and go together, to two people side by side: either
    # may land a moment first.
    if level_2 >= restarted:  # not gone before the kill (a loaded machine's slow level 1)
        assert abs(level_3 - level_2) < 0.5
    assert level_3 - restarted < 3
    counts = assert_each_once(fake, reference)
    # Nothing after the acknowledgement but a send already in flight when it was committed.
    assert all(arrived <= acknowledged + 1.0 for arrived, _ in fake.pings())
    assert sum(counts.values()) == len(counts)


def test_killed_after_slack_posted_the_card_and_before_it_was_recorded_the_card_is_not_doubled(
    fake, ward, database_url, policy_file
):
    """kill -9 in the outbox's narrowest window: Slack has posted the card, the bot has not yet
    heard so (the fake holds its answer). The next bot (on SQLite, the same one restarted; on
    PostgreSQL, once the dead one's lease runs out) finds the card in the channel by its
    metadata instead of posting a second, and the team's Acknowledge changes that card."""
    fake.fail("chat.postMessage", channel=CHANNEL, lands=True, status=0, hold=30)
    bot = start_bot(fake, database_url, policy_file)
    try:
        reference, _raised = raise_one(ward)
        review_id = int(reference[3:])
        eventually(lambda: channel_cards(fake), "the card posted", timeout=10)
    finally:
        bot.kill()
    bot = start_bot(fake, database_url, policy_file)
    try:
        # On PostgreSQL the dead bot's lease (15 s) must run out first.
        card = f"card:{review_id}:slack"
        eventually(lambda: card not in unsent(ward.db, [review_id]), "the card recorded", 25)
        service.acknowledge(services=ward, review_id=review_id, by=OUTREACH)
        updated = fake.wait_for("chat.update", timeout=10)[0].body
    finally:
        bot.stop()
    posted = channel_cards(fake)
    assert len(posted) == 1, f"the card was posted {len(posted)} times"
    assert updated["ts"] == posted[0]["ts"]
    assert any("already arrived; not sent again" in line for line in bot.log)


def channel_cards(fake: FakeSlack) -> list[dict]:
    """The cards Slack holds in the outreach channel (not its escalation notices)."""
    with fake._lock:
        kept = list(fake.messages.get(CHANNEL, []))
    return [m for m in kept if "thread_ts" not in m and m["text"].startswith("Rapid review")]


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_three_replicas_send_each_message_exactly_once(fake, ward, database_url, policy_file):
    bots = []
    try:
        bots = [start_bot(fake, database_url, policy_file) for _ in range(3)]
        references = []
        for _ in range(10):  # due times spread over the second, so replicas contend
            references.append(raise_one(ward)[0])
            time.sleep(0.1)
        fake.wait_for_ping((MO, references[-1], 3, 2), timeout=60)
        for reference in references:
            service.acknowledge(services=ward, review_id=int(reference[3:]), by=OUTREACH)
        # Every message now went, or was dropped unsent by the acknowledgement.
        settled = [int(reference[3:]) for reference in references]
        eventually(lambda: not unsent(ward.db, settled), "the outbox settled", timeout=60)
    finally:
        for bot in bots:
            bot.stop()
    for reference in references:
        assert_each_once(fake, reference)
    # Each level fired once in all the replicas together (level 0 fires in the raising
    # transaction, not in a bot). Which replica fires which is up to their tick phases.
    fired = Counter(key for bot in bots for key in levels_fired(bot.log))
    assert not {key: n for key, n in fired.items() if n > 1}, "a level fired in two replicas"
    delivered = {key[1:] for _, key in fake.pings() if key[2:] != (0, 0)}
    # A level fired just before its review was acknowledged may never have been sent: the
    # acknowledgement drops pings still queued (storage/outbox.drop_pending_escalations).
    dropped = dropped_levels(ward, references)
    assert set(fired) == delivered | dropped, (sorted(fired), sorted(delivered), sorted(dropped))


FIRED = re.compile(r"(RR-\d+) escalation level (\d+) repeat (\d+):")


def levels_fired(output: list[str]) -> list[tuple[str, int, int]]:
    """(review, level, repeat) of each level a bot's log says it fired."""
    return [
        (match[1], int(match[2]), int(match[3]))
        for match in (FIRED.search(line) for line in output)
        if match
    ]


def dropped_levels(ward, references: list[str]) -> set[tuple[str, int, int]]:
    """(review, level, repeat) of the escalation messages an acknowledgement dropped."""
    dropped = set()
    with ward.db.unit_of_work() as uow:
        for reference in references:
            for row in uow.outbox.for_review(int(reference[3:])):
                if row.state == "dropped" and row.key.startswith("esc:"):
                    _, _, level, repeat = row.key.split(":")[:4]
                    dropped.add((reference, int(level), int(repeat)))
    return dropped


def test_slack_failing_then_recovering_delivers_once_after_retry_after(
    fake, ward, database_url, policy_file
):
    fake.fail("chat.postMessage", times=1, status=500, channel=ALEX)  # level 0's ping
    fake.fail("chat.postMessage", times=1, status=429, retry_after=3, channel=CHANNEL)  # card
    # No digest channel: the bot's own posts there (digest, cover warnings) would meet the
    # failures meant for the request's messages.
    bot = start_bot(fake, database_url, policy_file, digest_channel="")
    try:
        reference, _raised = raise_one(ward)
        # Each destination's messages go in order, so level 1's ping to Alex comes after
        # level 0's retry, and the card's retry before level 1's post to the channel.
        fake.wait_for_ping((ALEX, reference, 1, 0), timeout=30)
        eventually(lambda: len(posted(fake, CHANNEL)) >= 2, "the card's retry", timeout=30)
    finally:
        bot.stop()
    posts = posted(fake)
    alex = [(t, answer) for t, channel, answer in posts if channel == ALEX]
    assert [answer for _, answer in alex] == ["failed", "ok", "ok"]  # level 0, then level 1
    # Backoff: a second, then the next drain (the upper bounds only catch a retry storm or a
    # lost retry; other jobs on a loaded machine can delay a drain by a second or two). On
    # PostgreSQL the bot keeps the database's time, its offset from this machine's clock
    # estimated anew every 5 s to within a few milliseconds: once, a retry came 1.4 ms short
    # of the second as this machine's clock measured it.
    early = 0.05
    assert 1 - early <= alex[1][0] - alex[0][0] < 5
    card = [(t, answer) for t, channel, answer in posts if channel == CHANNEL][:2]
    assert [answer for _, answer in card] == ["failed", "ok"]
    assert 3 - early <= card[1][0] - card[0][0] < 7  # Retry-After: 3 seconds, honoured
    counts = Counter(key for _, key in fake.pings())
    assert counts[(ALEX, reference, 0, 0)] == 1  # delivered once (the refused call is above)
    assert counts[(ALEX, reference, 1, 0)] == 1


def posted(fake: TimedSlack, channel: str | None = None) -> list[tuple[float, str, str]]:
    """(arrival, channel, "ok" or "failed") of each chat.postMessage, to `channel` if named."""
    return [
        (arrived, call.body["channel"], "ok" if call.answer.get("ok") else "failed")
        for arrived, call in list(fake.arrivals)
        if call.method == "chat.postMessage" and channel in (None, call.body["channel"])
    ]
