"""The engine and the unit of work.

SQLite: WAL, a busy timeout, and every transaction opened with BEGIN IMMEDIATE, so two threads
never interleave a read-modify-write (one process is supported on SQLite).
PostgreSQL: row locks (FOR UPDATE, SKIP LOCKED for the sweep and the outbox) let several
replicas share one database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, false, update
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

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        """A transaction; DatabaseUnavailable if it cannot be opened or committed."""
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield UnitOfWork(session)
                session.commit()
        except IntegrityError:
            raise  # a constraint said no: the caller decides what that means
        except SQLAlchemyError as error:
            raise DatabaseUnavailable(type(error).__name__) from error

    def refuses_writes(self) -> str | None:
        """Why the database would refuse a write (a read-only SQLite file or mount, a read-only
        PostgreSQL standby after a failover), or None. A write that changes nothing: reads
        alone would say all is well while no request can be recorded."""
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


def make_engine(url: str, **options: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _sqlite_immediate_transactions(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, connect_args=POSTGRES_CONNECT, **options)


def _sqlite_immediate_transactions(engine: Engine) -> None:
    # pysqlite's own BEGIN handling defers locks; take the write lock at BEGIN instead.
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
        connection.exec_driver_sql("BEGIN IMMEDIATE")
