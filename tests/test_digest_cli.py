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
from tests.support.process import run_bot

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
    assert posted.returncode == 0 and posted.stdout.rstrip().endswith("Posted.")
    again = bot("digest", "--date", "2026-12-02", "--post", url=database_file, cwd=tmp_path)
    assert again.stdout.rstrip().endswith("Already posted for that day; not posted again.")


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
