"""`python bot.py digest` and `python bot.py export`, run as an administrator would run them."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from reviews import service
from reviews.digest import digest_job
from reviews.notify import Route
from storage.database import Database
from storage.migrate import upgrade
from tests.support.builders import NURSE, make_services, request
from tests.support.clock import FrozenClock
from tests.support.process import free_port, run_bot

pytestmark = pytest.mark.slow
LONDON = ZoneInfo("Europe/London")
# The digest channel of a bot with no platform configured: the terminal (handlers/shell).
SHELL = Route(platform="shell", outreach_channel="outreach", digest_channel="digest")


@pytest.fixture
def database_file(tmp_path):
    url = f"sqlite:///{tmp_path}/rr.db"
    db = Database(url)
    upgrade(db.engine)
    clock = FrozenClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    service.raise_review(services=make_services(db, clock), request=request(), by=NURSE)
    db.dispose()
    return url


def bot(*args: str, url: str, cwd) -> subprocess.CompletedProcess[str]:
    return run_bot(*args, cwd=cwd, DATABASE_URL=url)


def test_digest_prints_and_posts_once(database_file, tmp_path):
    printed = bot("digest", "--date", "2026-12-02", url=database_file, cwd=tmp_path)
    assert printed.returncode == 0
    assert "Rapid review digest for Wed 02 Dec 2026" in printed.stdout
    assert "Requests raised: 1" in printed.stdout
    assert "9990000018" not in printed.stdout
    posted = bot("digest", "--date", "2026-12-02", "--post", url=database_file, cwd=tmp_path)
    # The shell's digest channel is the terminal itself: the digest shows, then where it went.
    assert posted.returncode == 0 and posted.stdout.rstrip().endswith("Posted to digest.")
    again = bot("digest", "--date", "2026-12-02", "--post", url=database_file, cwd=tmp_path)
    assert again.stdout.rstrip().endswith("Already posted for that day; not posted again.")


def test_a_digest_slack_did_not_take_is_said_to_be_queued_not_posted(tmp_path):
    database_file = f"sqlite:///{tmp_path}/empty.db"
    upgrade(Database(database_file).engine)
    posted = run_bot(
        "digest",
        "--date",
        "2026-12-02",
        "--post",
        cwd=tmp_path,
        DATABASE_URL=database_file,
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET="test-secret",
        SLACK_API_URL=f"http://127.0.0.1:{free_port()}/api/",  # nothing listens there
        OUTREACH_CHANNEL="C0OUTREACH",
        DIGEST_CHANNEL="C0DIGEST",
    )
    assert posted.returncode == 0
    last = posted.stdout.rstrip().splitlines()[-1]
    assert last.startswith("Queued, not yet sent (C0DIGEST: network: URLError)"), last
    assert "Posted" not in posted.stdout
    db = Database(database_file)
    with db.reading() as uow:
        # The figures and the chart, kept for the running bot.
        assert uow.outbox.count_by_state() == {"pending": 2}
    db.dispose()


def test_export_writes_the_file_and_refuses_a_bad_month(database_file, tmp_path):
    bad = bot("export", "--month", "2026-13", url=database_file, cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith("--month: '2026-13' is not a month like 2026-12")
    done = bot(
        "export", "--month", "2026-12", "--with-identifiers", url=database_file, cwd=tmp_path
    )
    assert done.returncode == 0
    assert "Wrote rapidreview-2026-12-WITH-IDENTIFIERS.csv" in done.stdout
    assert "9990000018" in (tmp_path / "rapidreview-2026-12-WITH-IDENTIFIERS.csv").read_text()


def test_a_day_not_yet_over_is_not_posted_so_its_digest_still_goes_at_digest_time(
    database_file, tmp_path
):
    """`digest --date DAY --post` for the day in progress (a manager wanting it early) posted
    the figures so far and marked the day's digest as posted: at DIGEST_TIME the scheduled one,
    with the whole day, never went."""
    now = datetime.now(LONDON)
    # The day whose 24 hours to 08:00 are under way: today before 08:00, else under_way.
    under_way = now.date() + timedelta(days=0 if now.time() < time(8) else 1)
    early = bot("digest", "--date", f"{under_way}", "--post", url=database_file, cwd=tmp_path)
    assert early.returncode == 2
    [line] = early.stderr.splitlines()
    assert "--post" in line and "08:00" in line and "--so-far" not in line
    assert "Posted" not in early.stdout
    db = Database(database_file)
    try:
        with db.reading() as uow:
            assert uow.digest.runs.claimed(under_way) == set()
        at_digest_time = datetime.combine(under_way, time(8, 0, 30), tzinfo=LONDON)
        services = make_services(db, FrozenClock(at_digest_time.astimezone(UTC)), routes=(SHELL,))
        assert digest_job(services) is True
    finally:
        db.dispose()


def test_a_day_whose_hours_have_not_begun_is_refused_not_shown_as_so_far(database_file, tmp_path):
    """It printed "so far: from 08:00 Wed 30 Dec to now, 08:00 Wed 30 Dec", a "now" weeks
    away, with every figure zero."""
    later = datetime.now(LONDON).date() + timedelta(days=3)
    shown = bot("digest", "--date", f"{later}", url=database_file, cwd=tmp_path)
    assert shown.returncode == 2 and shown.stdout == ""
    [line] = shown.stderr.splitlines()
    assert f"--date: {later}" in line and "not begun" in line
