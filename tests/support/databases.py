"""Real databases for tests: a fresh SQLite file, or a fresh PostgreSQL database per test.

Both are copies of a database migrated once per worker, which is much faster than migrating
each one. Making and dropping a PostgreSQL database is mostly waiting for the server's disk
(0.1-1 s each here; the drops were a quarter of the whole suite's time), so both are done in
the background while tests run: the next test's database is made ahead, and a finished test's
is dropped behind it. Where no server answers, PostgreSQL tests are skipped with the reason.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
    _drop_orphans()
    _admin(f"DROP DATABASE IF EXISTS {TEMPLATE}")
    _admin(f"CREATE DATABASE {TEMPLATE}")
    database = Database(pg_url(TEMPLATE))
    upgrade(database.engine)
    database.dispose()
    return TEMPLATE


def drop_template() -> None:
    """Drop this worker's template and the spare database made for a test that never came,
    once the finished tests' databases are dropped."""
    _Dropper.finish()
    spare = _Spare.take_last()
    if spare is not None:
        _admin(f"DROP DATABASE IF EXISTS {spare} WITH (FORCE)")
    if _template.cache_info().currsize:
        _admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")


def _drop_orphans() -> None:
    """Drop the test databases of test processes that died without dropping their own (a
    killed worker leaves its template, its test's database and the spare). Each name carries
    its process's id; a process still running keeps its databases."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        names = connection.execute(
            r"SELECT datname FROM pg_database WHERE datname ~ '^rr_(test|template)_[0-9]+(_|$)'"
        ).fetchall()
    for (name,) in names:
        if not _running(int(name.split("_")[2])):
            _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal: only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


def _new_database() -> str:
    name = f"rr_test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    _admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return name


class _Spare:
    """The next test's PostgreSQL database, being made in the background."""

    maker = ThreadPoolExecutor(1, thread_name_prefix="spare-database")
    lock = threading.Lock()
    next: Future[str] | None = None

    @classmethod
    def take(cls) -> str:
        """A new database's name; the one after it starts being made."""
        _template()
        with cls.lock:
            ready = cls.next or cls.maker.submit(_new_database)
            cls.next = cls.maker.submit(_new_database)
        return ready.result()

    @classmethod
    def take_last(cls) -> str | None:
        with cls.lock:
            ready, cls.next = cls.next, None
        try:
            return ready.result() if ready else None
        except psycopg.Error:
            return None


class _Dropper:
    """Finished tests' PostgreSQL databases, dropped in the background. A drop that fails is
    left to _drop_orphans, which drops it once this worker has ended."""

    dropper = ThreadPoolExecutor(1, thread_name_prefix="drop-database")
    lock = threading.Lock()
    pending: list[Future[None]] = []

    @classmethod
    def drop(cls, name: str) -> None:
        with cls.lock:
            cls.pending = [f for f in cls.pending if not f.done()]
            cls.pending.append(
                cls.dropper.submit(_admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            )

    @classmethod
    def finish(cls) -> None:
        with cls.lock:
            pending, cls.pending = cls.pending, []
        for future in pending:
            with contextlib.suppress(psycopg.Error):
                future.result()


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a new, migrated, empty PostgreSQL database, dropped afterwards (in the
    background: with FORCE, so that nothing a test left connected holds it)."""
    name = _Spare.take()
    try:
        yield pg_url(name)
    finally:
        _Dropper.drop(name)


@cache
def _sqlite_template() -> str:
    """A migrated SQLite file, made once per worker and removed when it ends."""
    directory = tempfile.mkdtemp(prefix="rr_sqlite_template_")
    path = os.path.join(directory, "template.db")
    database = Database(f"sqlite:///{path}")
    upgrade(database.engine)
    database.dispose()
    leftovers = [name for name in os.listdir(directory) if name != "template.db"]
    assert not leftovers, f"the template's journal was left behind: {leftovers}"
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return path


@contextmanager
def sqlite_database(directory: str) -> Iterator[str]:
    """The URL of a new, migrated, empty SQLite file in `directory`."""
    path = os.path.join(directory, "rapidreview-test.db")
    shutil.copyfile(_sqlite_template(), path)
    yield f"sqlite:///{path}"


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
