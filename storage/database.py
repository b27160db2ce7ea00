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
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, false, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, create_engine

from storage.channels import ChannelStore
from storage.checkins import CheckinStore
from storage.digest import DigestStore
from storage.events import EventLog
from storage.faults import WriteFaults, driver_said, storage_fault
from storage.metrics import MetricsStore
from storage.outbox import OutboxStore
from storage.platforms import PlatformStore
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
CHANGES_AT_BEGIN = "rapidreview_changes_at_begin"  # a SQLite connection's total_changes at BEGIN
WRITE_WAIT = 30.0  # seconds a writer waits for this process's other writers, as busy_timeout
SQLITE_POOL = 32  # connections kept open: each new one repeats the PRAGMAs below
SQLITE_CACHE_KB = 512  # each connection's page cache


class UnitOfWork:
    """One transaction. Commits on leaving the `with` block unless an exception escapes.

    `on_commit` runs once the transaction is committed: a log line saying who was told must
    not be written for a transaction a full disk or a lost connection then rolled back."""

    def __init__(self, session: Session):
        self.session = session
        self.on_commit: list[Callable[[], None]] = []
        self.reviews = ReviewStore(session)
        self.events = EventLog(session)
        self.outbox = OutboxStore(session)
        self.channels = ChannelStore(session)
        self.platforms = PlatformStore(session)
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
        self.faults = WriteFaults(self.engine.url)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        """A transaction; DatabaseUnavailable if it cannot be opened or committed."""
        with self._writers.turn() if self._writers else nullcontext():
            try:
                with Session(self.engine, expire_on_commit=False) as session:
                    uow = UnitOfWork(session)
                    yield uow
                    wrote = self.faults.active and self._sqlite_changed(session)
                    session.commit()
            except IntegrityError as error:
                # A constraint said no: the caller decides what that means.
                raise without_detail(error) from None
            except SQLAlchemyError as error:
                fault = storage_fault(error)
                if fault is not None:
                    self.faults.failed(fault, driver_said(error))
                raise DatabaseUnavailable(fault or type(error).__name__) from error
        if wrote:
            self.faults.wrote()
        for committed in uow.on_commit:
            committed()

    def _sqlite_changed(self, session: Session) -> bool:
        """Whether this SQLite transaction changed a row (its commit then reaches the disk).
        Asked only while writes are failing: a commit that changed nothing proves nothing."""
        if not self.is_sqlite or not session.in_transaction():
            return False
        connection = session.connection()
        began = connection.info.get(CHANGES_AT_BEGIN)
        changes = connection.connection.dbapi_connection.total_changes  # type: ignore[union-attr]
        return began is not None and changes > began

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

    def cannot_write(self) -> str | None:
        """Why a request could not be recorded now, in words the on-call engineer can act on,
        or None: a read-only SQLite file or mount, a read-only PostgreSQL standby after a
        failover, a full or failing disk. Reads alone would say all is well meanwhile.

        On SQLite the probe is a write that changes nothing yet reaches the disk (user_version
        rewritten as it is appends a page to the write-ahead log), so a full disk is seen before
        a nurse's request meets it. On PostgreSQL it is a write of no rows, which a read-only
        standby refuses; a full disk there shows by the writes it refused (WriteFaults)."""
        if self._writers is not None and self._writers.busy():
            # A write is under way in this process: not worth waiting behind.
            return self.faults.problem()
        try:
            with self.unit_of_work() as uow:
                if self.is_sqlite:
                    version = uow.session.execute(text("PRAGMA user_version")).scalar_one()
                    uow.session.execute(text(f"PRAGMA user_version = {int(version)}"))
                else:
                    uow.session.execute(update(Review).where(false()).values(state=Review.state))
        except DatabaseUnavailable as error:
            # This statement carries no request's words, so the driver's own reason is safe.
            return self.faults.problem() or (
                f"the database refuses writes ({driver_said(error)}): requests cannot be recorded"
            )
        if self.is_sqlite:
            self.faults.wrote()
        return self.faults.problem()

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
        # Each connection's own page cache, 512 KB (SQLite's default is 2 MB): with up to 64
        # pooled connections each filling its cache in turn, the bot's memory grew 2 MB a
        # minute through a 10-minute soak (+19.7 MB; +9.1 MB and levelling with this) while
        # Python's own heap stayed flat. The operating system caches the file anyway: no
        # slower at 10 concurrent submissions, 2% slower (at 256 KB) for a /metrics scrape
        # over 200,000 requests (docs/performance.md).
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
        if not read_only:  # whether a write changed anything (Database._sqlite_changed)
            connection.info[CHANGES_AT_BEGIN] = connection.connection.dbapi_connection.total_changes
