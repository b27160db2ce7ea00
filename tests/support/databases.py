"""Real databases for tests: a fresh SQLite file, or a fresh PostgreSQL database per test.

PostgreSQL databases are cloned from a migrated template, which is much faster than migrating
each one. Where no server answers, PostgreSQL tests are skipped with the reason.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import psycopg

from storage.database import Database
from storage.migrate import upgrade

PG_ADMIN = os.environ.get("RAPIDREVIEW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TEMPLATE = f"rr_template_{os.getpid()}"


@cache
def postgres_unavailable() -> str | None:
    """None when the test server answers, else why not (the skip reason)."""
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3, autocommit=True):
            return None
    except psycopg.Error as error:
        first_line = (
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        )
        return (
            f"PostgreSQL not reachable at {PG_ADMIN} ({first_line}); start it with "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )


def _admin(statement: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(statement)


def pg_url(name: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{base}/{name}"


@cache
def _template() -> str:
    _admin(f"DROP DATABASE IF EXISTS {TEMPLATE}")
    _admin(f"CREATE DATABASE {TEMPLATE}")
    database = Database(pg_url(TEMPLATE))
    upgrade(database.engine)
    database.dispose()
    return TEMPLATE


def drop_template() -> None:
    if _template.cache_info().currsize:
        _admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a new, migrated, empty PostgreSQL database, dropped afterwards."""
    name = f"rr_test_{uuid.uuid4().hex[:12]}"
    _admin(f"CREATE DATABASE {name} TEMPLATE {_template()}")
    try:
        yield pg_url(name)
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def sqlite_database(directory: str) -> Iterator[str]:
    url = f"sqlite:///{directory}/rapidreview-test.db"
    database = Database(url)
    upgrade(database.engine)
    database.dispose()
    yield url


@contextmanager
def stalled(db: Database) -> Iterator[None]:
    """Another connection holds the write lock (SQLite) or the review table (PostgreSQL): what
    the bot writes there waits until the block ends, as behind a stuck transaction."""
    if db.is_sqlite:
        blocker = sqlite3.connect(str(db.engine.url.database), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            blocker.rollback()
            blocker.close()
        return
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as pg_blocker:
        pg_blocker.execute("LOCK TABLE review IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            pg_blocker.rollback()
