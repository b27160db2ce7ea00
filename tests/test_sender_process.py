"""The bot's sender process (sender_process.py), as processes: on PostgreSQL the bot sends its
outbox from a second process of its own; when that process hangs, dies or is left behind by a
parent killed with kill -9, nothing waits longer than STANDBY, nothing goes twice and nothing
is left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from reviews import service
from reviews.clock import SystemClock
from reviews.health import STALE_AFTER, Health
from reviews.outbox import LEASE
from reviews.policy import load_policy
from sender_process import ENDED, RESTART_AFTER, SENDER_ENV, SILENT_AFTER, STANDBY, SenderProcess
from storage.database import Database
from tests.support.builders import NURSE, make_services, on_rota, request, unsent
from tests.support.databases import sqlite_database
from tests.support.process import (
    ROOT,
    BotProcess,
    command_line,
    free_port,
    slack_environment,
    start_slack_bot,
)
from tests.support.surge import ALEX, CHANNEL, POLICY  # level 0 now, level 1 in an hour
from tests.support.timed_slack import TimedSlack
from tests.support.waiting import eventually


@pytest.fixture
def fake():
    with TimedSlack() as slack:
        yield slack


@pytest.fixture
def sqlite_url(tmp_path: Path):
    with sqlite_database(str(tmp_path)) as url:
        yield url


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "escalation.toml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def ward(postgres_url, policy_file):
    db = Database(postgres_url)
    on_rota(db, "outreach", "Alex Carter", ALEX, datetime.now(UTC) - timedelta(hours=1), hours=4)
    yield make_services(db, SystemClock(), policy=load_policy(policy_file))
    db.dispose()


def raise_one(ward) -> tuple[str, float]:
    """A request raised on the bot's database: its reference, and when (Unix time)."""
    raised = time.time()
    review = service.raise_review(
        services=ward, request=request(caller="staff", news2=""), by=NURSE
    ).review
    return f"RR-{review.id:04d}", raised


def sender_of(bot: BotProcess) -> int:
    """The pid of the bot's running sender process, once there is one."""
    eventually(lambda: bot.sender() is not None, "the bot's sender process running", 30)
    sender = bot.sender()
    assert sender is not None
    return sender


def seen(port: int) -> tuple[str, list[str], float]:
    """The sender process as /healthz and /metrics show it: its state, /healthz's warnings,
    and rapidreview_sender_process_up."""
    health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    assert health.status_code == 200, health.text  # a sender's trouble is never a 503
    body = health.json()
    metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    [up] = [
        line for line in metrics.splitlines() if line.startswith("rapidreview_sender_process_up ")
    ]
    return body["sender_process"], body["warnings"], float(up.split()[1])


def sent_once(fake: TimedSlack, reference: str) -> None:
    """The request's card and its direct message to the bleep-holder each went exactly once."""
    pings = Counter(key for _, key in fake.pings() if key[1] == reference)
    assert pings == {(ALEX, reference, 0, 0): 1}, pings
    posted = len(cards(fake, reference))
    assert posted == 1, f"{reference}'s card was posted {posted} times"


@pytest.mark.slow
@pytest.mark.postgres
def test_the_bot_sends_from_its_sender_process_and_sends_itself_while_that_one_hangs(
    fake, ward, postgres_url, policy_file
):
    bot = start_slack_bot(fake.url, postgres_url, policy_file)
    try:
        sender = sender_of(bot)
        assert f"sending from process {sender}" in "".join(bot.log)
        reference, _ = raise_one(ward)
        fake.wait_for_ping((ALEX, reference, 0, 0), timeout=10)
        # Recorded too: a ping the sender is still recording when it stops holds back that
        # person's later ones until its lease runs out (the standby never passes a hold).
        eventually(lambda: not unsent(ward.db, [int(reference[3:])]), "the first recorded", 10)

        os.kill(sender, signal.SIGSTOP)  # hung: alive, holding nothing, sending nothing
        try:
            late, raised = raise_one(ward)
            arrived = fake.wait_for_ping((ALEX, late, 0, 0), timeout=20)
            eventually(lambda: not unsent(ward.db, [int(late[3:])]), "the card recorded", 10)
        finally:
            os.kill(sender, signal.SIGCONT)
        time.sleep(1)  # the sender, running again, must find nothing left to send
    finally:
        code = bot.stop()
    assert code == 0  # SIGTERM: stopped cleanly, its sender told to stop
    # The bot took it over once it had waited STANDBY, not at once (the sender's turn) and
    # not after a lease (15 s).
    assert STANDBY.total_seconds() <= arrived - raised < STANDBY.total_seconds() + 8
    assert any("that had waited over 2 s for the sender process" in line for line in bot.log)
    sent_once(fake, reference)
    sent_once(fake, late)
    assert command_line(sender) == ""  # stopped with the bot


@pytest.mark.slow
@pytest.mark.postgres
def test_a_sender_process_killed_is_said_and_replaced_and_nothing_waits_for_it(
    fake, ward, postgres_url, policy_file
):
    port = free_port()
    bot = start_slack_bot(fake.url, postgres_url, policy_file, PORT=str(port))
    try:
        first = sender_of(bot)
        eventually(lambda: seen(port) == ("sending", [], 1.0), "/healthz: sending", 20)
        os.kill(first, signal.SIGKILL)
        reference, _ = raise_one(ward)
        bot.wait_for("the sender process stopped (exit code -9)", timeout=10)
        # Said in /healthz (a warning: messages still go) and /metrics until the next one has
        # finished a drain: looked at as soon as the bot says so, as the next starts a second
        # later (on a busy machine the ping below could take longer than that to arrive).
        state, warnings, up = seen(port)
        assert state in ("stopped", "starting") and warnings == [ENDED] and up == 0.0
        fake.wait_for_ping((ALEX, reference, 0, 0), timeout=20)
        replaced = bot.wait_for("sending from process", timeout=20)
        second = sender_of(bot)
        assert second != first and f"sending from process {second}" in replaced
        eventually(lambda: seen(port) == ("sending", [], 1.0), "/healthz: sending again", 20)
        after, _ = raise_one(ward)
        fake.wait_for_ping((ALEX, after, 0, 0), timeout=20)
    finally:
        bot.stop()
    sent_once(fake, reference)
    sent_once(fake, after)


@pytest.mark.slow
@pytest.mark.postgres
def test_what_a_dead_sender_process_held_goes_at_once_not_after_its_lease(
    fake, ward, postgres_url, policy_file
):
    """Killed while it waits on Slack's answer for a card: the card is claimed under its lease.
    The next card to that channel waits behind it (a channel's messages go in order), but only
    until the bot sees its sender die and hands back what it held, not for the lease (15 s);
    the first card, which had landed, is found there and not posted again."""
    port = free_port()
    bot = start_slack_bot(fake.url, postgres_url, policy_file, PORT=str(port))
    try:
        sender = sender_of(bot)
        eventually(lambda: seen(port)[0] == "sending", "/healthz: sending", 20)
        fake.fail("chat.postMessage", channel=CHANNEL, lands=True, status=0, hold=30)
        first, _ = raise_one(ward)
        eventually(lambda: cards(fake, first), "the first card in the channel", 20)
        os.kill(sender, signal.SIGKILL)
        killed = time.monotonic()
        second, _ = raise_one(ward)
        eventually(lambda: cards(fake, second), "the second card in the channel", 40)
        waited = time.monotonic() - killed
        bot.wait_for("message(s) the ended sender process held will be sent now", timeout=10)
        eventually(lambda: not unsent(ward.db, [int(first[3:])]), "the first recorded", 20)
    finally:
        bot.stop()
    print(f"the next card went {waited:.1f} s after the sender process was killed")  # README
    assert waited < LEASE.total_seconds() - 5, f"the second card waited {waited:.1f} s"
    sent_once(fake, first)
    sent_once(fake, second)


def cards(fake: TimedSlack, reference: str) -> list:
    return [
        call
        for call in fake.called("chat.postMessage")
        if call.body.get("channel") == CHANNEL
        and str(call.body.get("text", "")).startswith(f"Rapid review {reference}")
    ]


@pytest.mark.slow
@pytest.mark.postgres
def test_a_sender_process_whose_bot_was_killed_stops_by_itself(fake, postgres_url, policy_file):
    bot = start_slack_bot(fake.url, postgres_url, policy_file)
    try:
        sender = sender_of(bot)
        bot.process.kill()  # the bot alone, as the kernel's out-of-memory killer would
        eventually(lambda: command_line(sender) == "", "the orphaned sender gone", timeout=15)
    finally:
        bot.kill()


@pytest.mark.slow
@pytest.mark.parametrize("where", ["sqlite", "postgres, SENDER_PROCESS=off"])
def test_no_sender_process_on_sqlite_or_when_turned_off(where, fake, policy_file, request):
    if where == "sqlite":
        url, settings = request.getfixturevalue("sqlite_url"), {}
    else:
        url, settings = request.getfixturevalue("postgres_url"), {"SENDER_PROCESS": "off"}
    db = Database(url)
    on_rota(db, "outreach", "Alex Carter", ALEX, datetime.now(UTC) - timedelta(hours=1), hours=4)
    bot = start_slack_bot(fake.url, url, policy_file, **settings)
    try:
        ward = make_services(db, SystemClock(), policy=load_policy(policy_file))
        reference, _ = raise_one(ward)
        fake.wait_for_ping((ALEX, reference, 0, 0), timeout=10)
        assert bot.sender() is None
    finally:
        bot.stop()
        db.dispose()
    sent_once(fake, reference)


@pytest.mark.slow
@pytest.mark.postgres
def test_the_sender_process_outlives_a_stop_signal_and_ends_when_its_input_closes(
    fake, postgres_url
):
    """Ctrl-C and SIGTERM reach a whole process group: the sender waits for its bot to close
    its input, so a send under way is recorded first."""
    env = slack_environment(fake.url, postgres_url)
    subprocess.run([sys.executable, "bot.py", "db", "upgrade"], cwd=ROOT, env=env, check=True)
    beats, their_end = os.pipe()
    sender = subprocess.Popen(
        [sys.executable, "bot.py", "sender"],
        cwd=ROOT,
        env={**env, SENDER_ENV: str(their_end)},
        stdin=subprocess.PIPE,
        pass_fds=(their_end,),
    )
    os.close(their_end)
    try:
        said = b""
        while b"." not in said:  # running: a drain has ended (it also says it takes lines)
            said += os.read(beats, 1)
        sender.send_signal(signal.SIGTERM)
        sender.send_signal(signal.SIGINT)
        time.sleep(1)
        assert sender.poll() is None, "the sender stopped on a signal"
        assert sender.stdin is not None
        sender.stdin.close()
        assert sender.wait(timeout=20) == 0
    finally:
        os.close(beats)
        if sender.poll() is None:
            sender.kill()


def test_a_sender_is_not_a_command_and_not_for_sqlite(tmp_path):
    by_hand = subprocess.run(
        [sys.executable, "bot.py", "sender"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert by_hand.returncode == 2 and "invalid choice: 'sender'" in by_hand.stderr
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}", SENDER_ENV: "1"}
    on_sqlite = subprocess.run(
        [sys.executable, "bot.py", "sender"],
        cwd=ROOT,
        env={k: v for k, v in env.items() if not k.startswith(("SLACK_", "TEAMS_"))},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert on_sqlite.returncode == 2 and "for PostgreSQL only" in on_sqlite.stderr


def test_a_sender_that_keeps_ending_is_said_and_restarted_ever_later():
    """A sender that exits at once: each end is a /healthz warning, which stays until a sender
    is heard from, and each restart waits longer (RESTART_AFTER)."""
    now = [0.0]
    warnings: list[str | None] = []
    process = SenderProcess(
        [sys.executable, "-c", "pass"], on_warning=warnings.append, monotonic=lambda: now[0]
    )
    process.start()
    try:
        for pause in RESTART_AFTER[:3]:
            eventually(lambda pid=process.pid: _ended(pid), "the sender exited", timeout=20)
            process.check()  # says it ended
            assert warnings[-1] == ENDED and process.pid is None
            stopped = now[0]
            while process.pid is None:
                now[0] += 0.5
                process.check()
            assert now[0] - stopped == pause
            assert warnings[-1] == ENDED  # started, not yet heard from
    finally:
        process.stop()


def test_a_sender_heard_from_clears_the_warning_and_one_gone_silent_is_killed():
    now = [0.0]
    warnings: list[str | None] = []
    # Beats once, then silent until told to stop (its input closed), as a sender stops.
    beats_once = (
        f"import os, sys; os.write(int(os.environ[{SENDER_ENV!r}]), b'.'); sys.stdin.read()"
    )
    process = SenderProcess(
        [sys.executable, "-c", beats_once], on_warning=warnings.append, monotonic=lambda: now[0]
    )
    process.start()
    silent = process.pid
    try:
        eventually(lambda: (process.check(), warnings)[1] == [None], "the sender heard", 20)
        now[0] += SILENT_AFTER - 1
        process.check()
        assert process.pid == silent  # quiet, not yet silent
        now[0] += 1
        process.check()  # silent for SILENT_AFTER since its one drain: killed, said
        assert warnings[-1] == ENDED and _ended(silent)
        now[0] += RESTART_AFTER[0]
        process.check()
        assert process.pid not in (None, silent)
    finally:
        process.stop()


def test_a_sender_whose_drain_hangs_makes_healthz_503_as_the_bots_own_drain_would():
    """On SQLite the bot's own drain, hung on a send that never returns (a server trickling its
    answer a byte at a time), makes /healthz 503 after STALE_AFTER. On PostgreSQL the sender
    process drains, and while the bot's standby drain kept up, /healthz stayed 200 until the
    sender was killed, SILENT_AFTER on, and then only warned."""
    now = [0.0]
    health = Health(monotonic=lambda: now[0])
    beats_once = (
        f"import os, sys; os.write(int(os.environ[{SENDER_ENV!r}]), b'.'); sys.stdin.read()"
    )
    process = SenderProcess([sys.executable, "-c", beats_once], monotonic=lambda: now[0])
    health.checks.append(lambda: process.hung(health.stale_after))
    now[0] += STALE_AFTER + 5  # starting: a busy machine may take this long, and it is no 503
    process.start()
    try:
        assert health.problems() == []
        eventually(lambda: process.state == "sending" or process.check(), "the sender heard", 20)
        now[0] += STALE_AFTER
        assert health.problems() == []  # a drain may take this long
        now[0] += 1
        assert health.problems() == [
            f"outbox has not completed for {STALE_AFTER + 1:.0f} s (in the sender process)"
        ]
    finally:
        process.stop()
    assert health.problems() == []  # stopped: nothing hangs


def _ended(pid: int | None) -> bool:
    # Not reaped until check() polls it: a zombie is an ended process.
    status = Path(f"/proc/{pid}/stat")
    return not status.exists() or status.read_text().rsplit(")", 1)[1].split()[0] == "Z"
