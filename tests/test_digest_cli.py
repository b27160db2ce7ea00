"""`python bot.py digest` and `python bot.py export`, run as an administrator would run them."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest

from reviews import service
from storage.database import Database
from storage.migrate import upgrade
from tests.support.builders import NURSE, make_services, request
from tests.support.clock import FrozenClock
from tests.support.process import free_port, run_bot

pytestmark = pytest.mark.slow


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
