"""Fault drills (issue 12) against the real `python bot.py` process; only the outside is faked.

PostgreSQL is cut through a loopback proxy the test controls (never the shared server); Slack
is the fake, made slow or failing; SQLite is made read-only, or its disk full (by the bot's own
file-size limit anywhere; for real, on a small tmpfs, where root may mount one). Each drill
states what a nurse and a monitor saw.
"""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlmodel import select

from handlers.slack.forms import REQUEST_FORM
from reviews import service
from reviews.clock import SystemClock
from storage.database import Database
from storage.migrate import upgrade
from storage.tables import Outbox, Review, ReviewEvent
from tests.support import waiting
from tests.support.builders import NURSE as ME
from tests.support.builders import make_services, on_rota, request
from tests.support.databases import postgres_database, postgres_unavailable
from tests.support.fake_slack import FakeSlack
from tests.support.process import BotProcess, slack_environment
from tests.support.slack_requests import request_form, view_submission
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow
REFERENCE = re.compile(r"RR-\d{4}")
NURSE, ALEX, SAM = "U0WARDNURSE", "U01ALEX", "U01SAM"
FALLBACK = "Bleep 1234 now; in an emergency call 2222."
# Seconds, not minutes, so a drill sees a ladder climb.
FAST_POLICY = """
[[levels]]
after = "0s"
notify = ["outreach"]
[[levels]]
after = "8s"
notify = ["outreach-backup"]
repeat_every = "24h"  # beyond the test: the ladder must repeat

[urgency.standard]
news2_at_least = 0
attend_within = "60m"
"""


# A bot that is not answering yet (or any more) is one more reason to keep waiting.
eventually = partial(waiting.eventually, ignoring=(requests.RequestException,))


def start_bot(fake: FakeSlack, database_url: str, tmp_path: Path) -> tuple[BotProcess, str]:
    """The bot over HTTP with a seconds-long ladder; Alex holds the bleep, Sam is backup."""
    policy = tmp_path / "policy.toml"
    policy.write_text(FAST_POLICY)
    env = slack_environment(
        fake.url,
        database_url,
        ESCALATION_POLICY=str(policy),
        FALLBACK_CONTACT=FALLBACK,
    )
    bot = BotProcess(env=env)
    bot.wait_for("Uvicorn running", timeout=60)
    return bot, f"http://127.0.0.1:{env['PORT']}"


def put_on_rota(database_url: str) -> None:
    db = Database(database_url)
    start = datetime.now(UTC) - timedelta(hours=1)
    on_rota(db, "outreach", "Alex Carter", ALEX, start)
    on_rota(db, "outreach-backup", "Sam Patel", SAM, start)
    db.dispose()


def put_on_rota_and_migrate(database_url: str) -> None:
    db = Database(database_url)
    upgrade(db.engine)
    db.dispose()
    put_on_rota(database_url)


def submit(base: str, view_id: str) -> requests.Response:
    form = view_submission(REQUEST_FORM, request_form(), user_id=NURSE, view_id=view_id)
    return requests.post(
        f"{base}/slack/events", data=form.body.encode(), headers=form.headers, timeout=10
    )


def health_body(base: str, status: int) -> dict[str, Any] | None:
    """/healthz's body if it answers `status` now."""
    answer = requests.get(f"{base}/healthz", timeout=15)
    return answer.json() if answer.status_code == status else None


def direct_messages(fake: FakeSlack, user: str) -> list[str]:
    return [
        c.body["text"]
        for c in fake.called("chat.postMessage")
        if c.body.get("channel") == user and c.answer.get("ok")
    ]


@pytest.mark.postgres
def test_postgresql_cut_then_back(fake: FakeSlack, tmp_path: Path) -> None:
    if reason := postgres_unavailable():
        pytest.skip(reason)
    with postgres_database() as direct_url, TcpProxy("127.0.0.1", 5432) as proxy:
        put_on_rota(direct_url)
        bot, base = start_bot(fake, direct_url.replace(":5432/", f":{proxy.port}/"), tmp_path)
        try:
            assert "RR-0001 raised" in submit(base, "V0BEFORE").text
            eventually(lambda: direct_messages(fake, ALEX), "level 0 reached Alex")

            proxy.cut()
            started = time.monotonic()
            answer = submit(base, "V0DURING")
            assert time.monotonic() - started < 3, "answered inside Slack's 3 seconds"
            said = json.dumps(answer.json())
            assert "NOTHING WAS RECORDED" in said and FALLBACK in said
            down = eventually(lambda: health_body(base, 503), "503")
            assert "the database does not answer" in down["problems"]
            time.sleep(9)  # level 1 of RR-0001 falls due while the database is away

            proxy.restore()
            eventually(lambda: health_body(base, 200), "healthy again by itself")
            # The ladder of the request raised before the cut carries on.
            [ping] = eventually(lambda: direct_messages(fake, SAM), "level 1 reached Sam")
            assert "RR-0001" in ping
        finally:
            bot.stop()
        db = Database(direct_url)
        with db.unit_of_work() as uow:
            reviews = uow.session.exec(select(Review)).all()
            orphans = uow.session.exec(select(Outbox).where(Outbox.review_id != 1)).all()
        db.dispose()
        assert [r.id for r in reviews] == [1], "nothing half-written from the refused request"
        assert [o.key for o in orphans if o.review_id is not None] == []
    assert not [line for line in bot.log if "Traceback" in line]


@pytest.mark.postgres
def test_postgresql_hanging_then_back(fake: FakeSlack, tmp_path: Path) -> None:
    """The server stops answering without closing anything (stopped, or stuck on its storage):
    connections are taken and every byte acknowledged, so no timeout of the driver fires, and
    a pooled connection waits for ever. /healthz went unanswered while it lasted."""
    if reason := postgres_unavailable():
        pytest.skip(reason)
    with postgres_database() as direct_url, TcpProxy("127.0.0.1", 5432) as proxy:
        put_on_rota(direct_url)
        bot, base = start_bot(fake, direct_url.replace(":5432/", f":{proxy.port}/"), tmp_path)
        try:
            assert "RR-0001 raised" in submit(base, "V0BEFORE").text
            eventually(lambda: direct_messages(fake, ALEX), "level 0 reached Alex")
            # A monitor's probes side by side leave the pool holding connections to reuse.
            with ThreadPoolExecutor(8) as probes:
                assert {a.status_code for a in probes.map(lambda _: healthz(base), range(8))} == {
                    200
                }

            proxy.freeze()
            started = time.monotonic()
            said = json.dumps(submit(base, "V0DURING").json())
            assert time.monotonic() - started < 3, "answered inside Slack's 3 seconds"
            assert "NOT CONFIRMED" in said and FALLBACK in said
            for _ in range(2):  # a monitor probing, as each probe gives up after 10 s
                started = time.monotonic()
                answer = healthz(base)
                assert answer.status_code == 503 and time.monotonic() - started < 9
                assert answer.json()["problems"][0].startswith("the database does not answer")

            def sweep_stalled() -> bool:
                return "sweep has not completed for" in " ".join(healthz(base).json()["problems"])

            # Meanwhile level 1 of RR-0001 falls due, and the sweep cannot claim it.
            eventually(sweep_stalled, "the stalled sweep named", 20)

            proxy.thaw()
            eventually(lambda: health_body(base, 200), "healthy again by itself")
            sam, alex = (
                (lambda: " ".join(direct_messages(fake, SAM))),
                (lambda: " ".join(direct_messages(fake, ALEX))),
            )
            eventually(lambda: "RR-0001" in sam(), "level 1 reached Sam")
            # The request NOT CONFIRMED was recorded once the database answered: the team has it.
            eventually(lambda: "RR-0002" in alex(), "RR-0002 reached Alex")
        finally:
            bot.stop()
    assert not [line for line in bot.log if "Traceback" in line]


def healthz(base: str) -> requests.Response:
    return requests.get(f"{base}/healthz", timeout=10)


@dataclass
class SlowSlack(FakeSlack):
    """The fake Slack, answering chat.postMessage only after `delay` seconds, until it is
    quick again (quick_again()): then the calls it holds are answered at once too."""

    delay: float = 0.0
    quick: threading.Event = field(default_factory=threading.Event)

    def quick_again(self) -> None:
        self.delay = 0.0
        self.quick.set()

    def answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        if method == "chat.postMessage":
            self.quick.wait(self.delay)
        return super().answer(method, body)


def metric(base: str, name: str) -> float:
    text = requests.get(f"{base}/metrics", timeout=15).text
    [line] = [line for line in text.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[1])


def test_slack_failing_then_slow(database_url: str, tmp_path: Path) -> None:
    put_on_rota(database_url)
    with SlowSlack() as slack:
        slack.fail("chat.postMessage", times=10_000, status=503)
        bot, base = start_bot(slack, database_url, tmp_path)
        try:
            # Slack is down: nurses' requests are still stored and confirmed at once.
            for n in (1, 2, 3):
                started = time.monotonic()
                assert f"RR-000{n} raised" in submit(base, f"V0FORM{n}").text
                assert time.monotonic() - started < 3
            backlog = eventually(lambda: health_body(base, 200), "healthz")["outbox_pending"]
            assert backlog >= 6, "three cards and three pings wait"
            assert metric(base, "rapidreview_outbox_pending") >= 6
            assert not direct_messages(slack, ALEX)

            # Slack comes back, slow: two seconds a message. Everything goes, in order.
            slack.delay = 2.0
            slack.failures.clear()
            eventually(lambda: metric(base, "rapidreview_outbox_pending") == 0, "drained", 90)
            cards = [
                c.body["text"]
                for c in slack.called("chat.postMessage")
                if c.body["channel"] == "C0OUTREACH"
                and c.answer.get("ok")
                # With no digest channel set, the team's channel also hears the bot's alarms.
                and str(c.body.get("text", "")).startswith("Rapid review RR-")
            ]
            in_order = ["RR-0001", "RR-0002", "RR-0003"]
            assert [REFERENCE.findall(card)[0] for card in cards] == in_order
            # One by one, or (fallen behind while Slack was down) as one message with a line
            # each: either way the bleep-holder reads them in order.
            pings = [line for ping in direct_messages(slack, ALEX) for line in ping.split("\n")]
            told = [REFERENCE.findall(line)[0] for line in pings if REFERENCE.search(line)]
            assert list(dict.fromkeys(told))[:3] == in_order
            assert metric(base, "rapidreview_outbox_failed_total") == 0
        finally:
            bot.stop()
    assert not [line for line in bot.log if "Traceback" in line]


def test_a_read_only_sqlite_file(fake: FakeSlack, tmp_path: Path) -> None:
    path = tmp_path / "rapidreview.db"
    writable = f"sqlite:///{path}"
    put_on_rota_and_migrate(writable)
    confirmed = Database(writable)
    service.raise_review(services=make_services(confirmed, SystemClock()), request=request(), by=ME)
    confirmed.dispose()
    # Root ignores file modes, so the file is opened read-only the way SQLite itself allows.
    bot, base = start_bot(fake, f"sqlite:///file:{path}?mode=ro&uri=true", tmp_path)
    try:
        started = time.monotonic()
        said = json.dumps(submit(base, "V0READONLY").json())
        assert time.monotonic() - started < 3
        assert "NOTHING WAS RECORDED" in said and FALLBACK in said
        down = eventually(lambda: health_body(base, 503), "503")
        assert down["database"] == "refuses writes" and down["open_requests"] == 1
        assert down["problems"][0] == (
            "the database refuses writes (attempt to write a readonly database): requests "
            "cannot be recorded"
        )
        time.sleep(3)
        assert bot.process.poll() is None, "no crash, no restart loop"
    finally:
        bot.stop()
    # Said once per job, not twice a second.
    assert len([line for line in bot.log if "database unavailable" in line]) <= 6
    assert not [line for line in bot.log if "Traceback" in line]
    db = Database(writable)
    with db.unit_of_work() as uow:
        assert [r.id for r in uow.session.exec(select(Review)).all()] == [1], "RR-0001 stands"
    db.dispose()


def test_slack_answering_after_10_seconds(database_url: str, tmp_path: Path) -> None:
    put_on_rota(database_url)
    with SlowSlack() as slack:
        slack.delay = 11.0  # past the bot's 10 s timeout for one call
        bot, base = start_bot(slack, database_url, tmp_path)
        try:
            started = time.monotonic()
            assert "RR-0001 raised" in submit(base, "V0SLOW").text
            assert time.monotonic() - started < 3, "the nurse never waits for Slack"
            stuck = eventually(lambda: health_body(base, 503), "503 while delivery hangs", 40)
            assert any(p.startswith("outbox has not completed for") for p in stuck["problems"])
            assert stuck["outbox_pending"] >= 2

            slack.quick_again()
            eventually(lambda: metric(base, "rapidreview_outbox_pending") == 0, "drained", 60)
            eventually(lambda: health_body(base, 200), "healthy again")
            # Slack did post what the bot gave up waiting for: a timed-out send is sent again
            # (at least once, never lost), so a very slow Slack can show a message twice.
            assert direct_messages(slack, ALEX)
            assert metric(base, "rapidreview_outbox_failed_total") == 0
        finally:
            bot.stop()
    assert not [line for line in bot.log if "Traceback" in line]


@contextmanager
def size_limited(pid: int, database: Path) -> Iterator[None]:
    """The disk is full for process `pid` alone, then space is freed. No file of its may grow
    past the smaller of the database and its write-ahead log, which every commit appends to:
    its soft RLIMIT_FSIZE is lowered (Python ignores SIGXFSZ, so a write past it fails with
    EFBIG, which SQLite reports as "disk I/O error"). Portable and needs no root; the hard
    limit is kept so the soft one can be raised again."""
    wal = database.with_name(database.name + "-wal")
    limit = min(f.stat().st_size for f in (database, wal) if f.exists())
    soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))


@contextmanager
def filled(_pid: int, database: Path) -> Iterator[None]:
    """The filesystem holding `database` filled to its last byte, then space is freed: every
    process's write that needs a new block fails with ENOSPC, which SQLite reports as
    "database or disk is full"."""
    filler = os.open(database.parent / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        block = 1 << 20
        while block:
            try:
                os.write(filler, b"\0" * block)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
                block //= 2
        yield
    finally:
        os.close(filler)
        (database.parent / "filler").unlink()


@dataclass
class Disk:
    directory: Path  # where the database lives
    full: Callable[[int, Path], AbstractContextManager[None]]  # (bot's pid, database)
    refusal: str  # the start of /healthz's first problem while it is full
    filled: bool  # the filesystem itself is full (not only the bot's own limit)


@pytest.fixture(params=["file-size limit", "full filesystem"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Disk]:
    """A disk to fill: by the bot's own file-size limit (anywhere), or a small filesystem of
    its own filled for real (tmpfs: where root may mount one, else skipped)."""
    if request.param == "file-size limit":
        yield Disk(tmp_path, size_limited, "the database cannot write: disk I/O error", False)
        return
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield Disk(mount, filled, "the database cannot write: its disk is full", True)
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


def test_a_full_disk(fake: FakeSlack, disk: Disk, tmp_path: Path) -> None:
    path = disk.directory / "rapidreview.db"
    url = f"sqlite:///{path}"
    put_on_rota_and_migrate(url)
    bot, base = start_bot(fake, url, tmp_path)
    try:
        for n in (1, 2):
            assert f"RR-000{n} raised" in submit(base, f"V0BEFORE{n}").text
        eventually(lambda: len(direct_messages(fake, ALEX)) == 2, "level 0 reached Alex")
        eventually(lambda: metric(base, "rapidreview_outbox_pending") == 0, "outbox drained")

        with disk.full(bot.process.pid, path):
            started = time.monotonic()
            said = json.dumps(submit(base, "V0DURING").json())
            assert time.monotonic() - started < 3, "answered inside Slack's 3 seconds"
            assert "NOTHING WAS RECORDED" in said and FALLBACK in said
            down = eventually(lambda: health_body(base, 503), "503")
            assert down["database"] == "refuses writes" and down["open_requests"] == 2
            assert down["problems"][0].startswith(disk.refusal), down
            assert str(disk.directory) in down["problems"][0], "where to free space"
            if disk.filled:  # free space is shown, and warned of
                assert down["disk_free_bytes"] < 1 << 20, down
                assert any(w.startswith("only 0 MB free on") for w in down["warnings"]), down
            # Level 1 of both requests falls due while nothing can be written: the sweep tries.
            eventually(
                lambda: [line for line in bot.log if "sweep: database unavailable" in line],
                "the sweep tried",
                15,
            )
            time.sleep(1)
            assert bot.process.poll() is None, "no crash, no restart loop"
            assert not direct_messages(fake, SAM)

        # Space freed: the bot mends by itself, takes new requests, and the ladders carry on.
        eventually(lambda: health_body(base, 200), "healthy again by itself")
        assert "RR-0003 raised" in submit(base, "V0AFTER").text
        eventually(lambda: len(direct_messages(fake, SAM)) == 2, "level 1 reached Sam")
        assert sorted(REFERENCE.findall(" ".join(direct_messages(fake, SAM)))) == [
            "RR-0001",
            "RR-0002",
        ]
    finally:
        bot.stop()
    # Told once as an ERROR for the outage, not once per tick; its end told once too.
    told = [line for line in bot.log if "ERROR storage.faults" in line]
    assert len(told) == 1 and disk.refusal in told[0], told
    assert len([line for line in bot.log if "the database writes again" in line]) == 1
    assert len([line for line in bot.log if "sweep: database unavailable" in line]) == 1
    # Who was told is logged once it is stored, not on every tick the disk refused.
    assert len([line for line in bot.log if "escalation level 1" in line]) == 2
    assert not [line for line in bot.log if "Traceback" in line]
    # Nothing lost that was confirmed, nothing half-written from the refused request.
    db = Database(url)
    with db.unit_of_work() as uow:
        reviews = [r.id for r in uow.session.exec(select(Review)).all()]
        audited = {e.review_id for e in uow.session.exec(select(ReviewEvent)).all()}
        queued = {o.review_id for o in uow.session.exec(select(Outbox)).all()}
    db.dispose()
    assert reviews == [1, 2, 3]
    assert audited - {None} == queued - {None} == {1, 2, 3}  # (a job's events name none)


PROXY_PAGE = "<html><body><h1>502 Bad Gateway</h1>The trust's web proxy could not reach the site."


def test_slack_answering_200_with_a_failure_that_passes(
    fake: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """A corporate proxy's error page answered as HTTP 200 in Slack's place: the ping is tried
    again and reaches the bleep-holder, once; it is never failed for good. (Slack's own passing
    failures answered as 200s are mapped alike: tests/test_slack_sender.py.)"""
    put_on_rota(database_url)
    fake.fail("chat.postMessage", times=3, status=200, page=PROXY_PAGE)
    bot, base = start_bot(fake, database_url, tmp_path)
    try:
        assert "RR-0001 raised" in submit(base, "V0GARBLED").text
        [ping] = eventually(lambda: direct_messages(fake, ALEX), "level 0 reached Alex", 40)
        assert "RR-0001" in ping
        eventually(lambda: metric(base, "rapidreview_outbox_pending") == 0, "drained", 40)
        assert metric(base, "rapidreview_outbox_failed_total") == 0
        time.sleep(1)
        assert direct_messages(fake, ALEX) == [ping], "sent once"
        posted = [c.body.get("text", "") for c in fake.called("chat.postMessage")]
        assert not [text for text in posted if "could not be delivered" in text]
    finally:
        bot.stop()
    assert not [line for line in bot.log if "Traceback" in line]
