"""A database whose disk is full is told apart from one that is away: the nurse is told nothing
was recorded, /healthz names the disk and where to free space until a write succeeds, and the
log says so once per outage. The errors are the databases' own: SQLite's SQLITE_FULL (raised
when the database may not grow, as on ENOSPC) and PostgreSQL's 53100 disk_full, raised by the
real server (its disk is never filled). The real-process drill is tests/test_drills.py.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import event, text

from handlers.http import make_http_app
from reviews.service import raise_review
from storage.database import Database, DatabaseUnavailable
from tests.support.builders import NURSE, make_services, request
from tests.support.clock import FrozenClock
from tests.support.databases import postgres_database, postgres_unavailable, sqlite_database
from tests.support.http import serve

# What PostgreSQL says when it cannot extend a table's file (md.c), with its own SQLSTATE.
POSTGRES_DISK_FULL = """
DO $$ BEGIN
  RAISE EXCEPTION 'could not extend file "base/16384/16397": No space left on device'
    USING ERRCODE = 'disk_full', HINT = 'Check free disk space.';
END $$
"""


def told(caplog: pytest.LogCaptureFixture, level: int, words: str) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno == level and words in r.getMessage()
    ]


def test_sqlite_full_refuses_a_request_and_says_where_to_free_space(
    tmp_path: Path, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    with sqlite_database(str(tmp_path)) as url:
        db = Database(url)
    pages = {"max": 1}  # SQLite holds the database at its present size: it may not grow

    @event.listens_for(db.engine, "checkout")
    def _limit(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages['max']}")

    services = make_services(db, clock)
    try:
        raised = 0
        with pytest.raises(DatabaseUnavailable, match="disk full"):
            while raised < 500:  # until the pages it has are full
                raise_review(services=services, request=request(), by=NURSE)
                raised += 1
        with pytest.raises(DatabaseUnavailable, match="disk full"):
            raise_review(services=services, request=request(), by=NURSE)
        problem = db.faults.problem()
        assert problem is not None
        assert problem.startswith(
            "the database cannot write: its disk is full (database or disk is full)"
        )
        assert problem.endswith(f"until space is freed on {db.faults.directory}")
        assert len(told(caplog, logging.ERROR, "the database cannot write")) == 1

        pages["max"] = 1_000_000  # space freed
        assert raise_review(services=services, request=request(), by=NURSE).changed
        assert db.faults.problem() is None
        assert len(told(caplog, logging.WARNING, "the database writes again")) == 1
        with db.reading() as uow:
            assert uow.reviews.count_open() == raised + 1  # those confirmed before, the new one
    finally:
        db.dispose()


@pytest.mark.postgres
def test_postgresql_disk_full_makes_healthz_503_naming_the_server_disk(
    caplog: pytest.LogCaptureFixture,
) -> None:
    if reason := postgres_unavailable():
        pytest.skip(reason)
    with postgres_database() as url:
        db = Database(url)
        try:
            for _ in range(3):
                with pytest.raises(DatabaseUnavailable, match="disk full"):
                    with db.unit_of_work() as uow:
                        uow.session.execute(text(POSTGRES_DISK_FULL))
            with serve(make_http_app(db, [])) as base:
                down = requests.get(f"{base}/healthz", timeout=10)
                assert down.status_code == 503
                assert down.json()["database"] == "refuses writes"
                assert "disk_free_bytes" not in down.json()  # the server's disk is its own
                assert down.json()["problems"] == [
                    "the database cannot write: its disk is full (could not extend file "
                    '"base/16384/16397": No space left on device); requests cannot be recorded '
                    "until space is freed on the database server's data disk (127.0.0.1)"
                ]
                assert len(told(caplog, logging.ERROR, "the database cannot write")) == 1
                # No write of ours can prove the server's disk mended (PostgreSQL may take a
                # write that fits a page it has): the refusal is remembered for `hold` seconds.
                db.faults.hold = 0.2
                time.sleep(0.3)
                assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
        finally:
            db.dispose()


def test_little_disk_left_is_a_warning_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with sqlite_database(str(tmp_path)) as url:
        db = Database(url)
    db.faults.low_space = 1 << 60  # more than any disk has free
    with serve(make_http_app(db, [])) as base:
        for _ in range(2):
            answer = requests.get(f"{base}/healthz", timeout=10)
            assert answer.status_code == 200, "the database still writes"
            [warning] = answer.json()["warnings"]
            assert warning.startswith("only ") and f"MB free on {db.faults.directory}" in warning
        db.faults.low_space = 0
        assert requests.get(f"{base}/healthz", timeout=10).json()["warnings"] == []
    assert len(told(caplog, logging.WARNING, "MB free on")) == 1
    assert len(told(caplog, logging.WARNING, "is back above")) == 1
    db.dispose()
