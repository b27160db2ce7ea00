"""The engine and the unit of work.

SQLite: WAL, a busy timeout, and every writing transaction opened with BEGIN IMMEDIATE, so two
threads never interleave a read-modify-write (one process is supported on SQLite). Writers in
this process queue on a lock first: SQLite's own busy handler polls with sleeps of up to 100 ms,
which under load left some requests waiting seconds while others went ahead. Reads
(`reading()`) open a deferred transaction: under WAL they see one snapshot and never take the
write lock, so a long export or a health check holds nobody up.
PostgreSQL: row locks (FOR UPDATE, SKIP LOCKED for the sweep and the outbox) let several
replicas share one database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, false, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, create_engine

from storage.checkins import CheckinStore
from storage.digest import DigestStore
from storage.events import EventLog
from storage.metrics import MetricsStore
from storage.outbox import OutboxStore
from storage.reviews import ReviewStore
from storage.rota import RotaStore
from storage.tables import Review
from storage.web import WebStore

# No statement, lock wait or dead connection may hang the sweep or a nurse's request for long:
# each fails instead, is retried, and shows in /healthz. The longest honest query (the monthly
# export over a million requests) takes a few seconds; TCP keepalives and tcp_user_timeout
# notice a server that vanished without closing the connection (a cut network).
POSTGRES_CONNECT: dict[str, Any] = {
    "connect_timeout": 3,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15000,
    "options": "-c statement_timeout=30000 -c lock_timeout=5000 "
    "-c idle_in_transaction_session_timeout=60000",
}


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached or the transaction could not be committed."""


READ_ONLY = "rapidreview_read_only"  # execution option: a transaction that only reads
WRITE_WAIT = 30.0  # seconds a writer waits for this process's other writers, as busy_timeout
SQLITE_POOL = 32  # connections kept open: each new one repeats the PRAGMAs below


class UnitOfWork:
    """One transaction. Commits on leaving the `with` block unless an exception escapes."""

    def __init__(self, session: Session):
        self.session = session
        self.reviews = ReviewStore(session)
        self.events = EventLog(session)
        self.outbox = OutboxStore(session)
        self.rota = RotaStore(session)
        self.digest = DigestStore(session)
        self.checkins = CheckinStore(session)
        self.web = WebStore(session)
        self.metrics = MetricsStore(session)

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name


class Database:
    def __init__(self, url: str, **engine_options: Any):
        self.url = url
        self.engine = make_engine(url, **engine_options)
        self._reader = self.engine.execution_options(**{READ_ONLY: True})
        self._writers = _WriterQueue() if self.is_sqlite else None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        """A transaction; DatabaseUnavailable if it cannot be opened or committed."""
        with self._writers.turn() if self._writers else nullcontext():
            try:
                with Session(self.engine, expire_on_commit=False) as session:
                    yield UnitOfWork(session)
                    session.commit()
            except IntegrityError as error:
                # A constraint said no: the caller decides what that means.
                raise without_detail(error) from None
            except SQLAlchemyError as error:
                raise DatabaseUnavailable(type(error).__name__) from error

    @contextmanager
    def reading(self) -> Iterator[UnitOfWork]:
        """A transaction that only reads (health, App Home, exports): it never waits for
        writers nor holds them up. Never committed: closing it rolls back whatever was
        written, and leaves what was read loaded. DatabaseUnavailable if it cannot be opened."""
        try:
            with Session(self._reader, expire_on_commit=False) as session:
                yield UnitOfWork(session)
        except SQLAlchemyError as error:
            raise DatabaseUnavailable(type(error).__name__) from error

    def server_time(self) -> datetime:
        """The database server's clock (PostgreSQL's clock_timestamp()); this machine's for
        SQLite, which has no server. DatabaseUnavailable if it cannot be read."""
        if self.is_sqlite:
            return datetime.now(UTC)
        try:
            with self.engine.connect() as connection:
                return connection.execute(text("SELECT clock_timestamp()")).scalar_one()
        except SQLAlchemyError as error:
            raise DatabaseUnavailable(type(error).__name__) from error

    def refuses_writes(self) -> str | None:
        """Why the database would refuse a write (a read-only SQLite file or mount, a read-only
        PostgreSQL standby after a failover), or None. A write that changes nothing: reads
        alone would say all is well while no request can be recorded."""
        if self._writers is not None and self._writers.busy():
            return None  # a write is under way in this process: not worth waiting behind
        try:
            with self.unit_of_work() as uow:
                uow.session.execute(update(Review).where(false()).values(state=Review.state))
        except DatabaseUnavailable as error:
            cause = error.__cause__
            original = getattr(cause, "orig", None) or cause or error
            # This statement carries no request's words, so the driver's own reason is safe.
            return str(original).strip().splitlines()[0][:200]
        return None

    def dispose(self) -> None:
        self.engine.dispose()


class _WriterQueue:
    """This process's SQLite writers, one at a time, each woken the moment the one before it
    ends (a thread already inside a transaction passes: it must not wait on itself)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def busy(self) -> bool:
        if self._lock.acquire(blocking=False):
            self._lock.release()
            return False
        return True

    @contextmanager
    def turn(self) -> Iterator[None]:
        if not self._lock.acquire(timeout=WRITE_WAIT):
            raise DatabaseUnavailable("write lock wait timed out")
        try:
            yield
        finally:
            self._lock.release()


def without_detail(error: IntegrityError) -> IntegrityError:
    """`error` with only the first line of the database's message (which constraint said
    no): PostgreSQL's DETAIL line quotes the refused row, names and numbers included, and a
    traceback would carry it into the log."""
    said = str(error.orig).splitlines()[0] if error.orig is not None else ""
    return IntegrityError(None, None, RefusedRow(said))


class RefusedRow(Exception):
    """What the database said of a row it refused, without the row."""


def make_engine(url: str, **options: Any) -> Engine:
    """The engine for `url`. hide_parameters: a database error's message would otherwise quote
    the statement's values (names, NHS and call-back numbers), and tracebacks carry it into
    the log."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=SQLITE_POOL,
            max_overflow=SQLITE_POOL,
            # The most recently used connection first: a steady load keeps reusing a few warm
            # ones, instead of filling every pooled connection's page cache in turn.
            pool_use_lifo=True,
        )
        _sqlite_immediate_transactions(engine)
        return engine
    # Room for the Slack listeners, the sweep and the outbox at once without waiting for a
    # connection; three replicas stay well inside PostgreSQL's default 100 connections.
    pool = {"pool_size": 10, "max_overflow": 15}
    return create_engine(
        url,
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args=POSTGRES_CONNECT,
        **{**pool, **options},
    )


def _sqlite_immediate_transactions(engine: Engine) -> None:
    # pysqlite's own BEGIN handling defers locks; take the write lock at BEGIN instead, except
    # in a read-only transaction, whose deferred BEGIN reads one WAL snapshot without it.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
