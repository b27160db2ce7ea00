"""Time, passed in: the system clock in production; tests pass their own (tests/support)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

from storage.database import Database, DatabaseUnavailable

log = logging.getLogger(__name__)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class DatabaseClock:
    """The database server's time, for several replicas on one PostgreSQL.

    Claims, leases and due times compare times that different replicas wrote; with each
    replica's own clock, one running a minute fast fired levels early and took messages
    another replica still held under lease. This reads the server's clock_timestamp() at most
    every SYNC seconds and adds that offset to the machine's clock in between (a query per
    call would cost more than the work it times). If the database cannot be read, the last
    offset stands.
    """

    SYNC = 5.0

    def __init__(self, db: Database, machine: Clock | None = None):
        self.db = db
        self.machine = machine or SystemClock()
        self.offset = timedelta(0)
        self.synced = -self.SYNC
        self.lock = threading.Lock()

    def now(self) -> datetime:
        if time.monotonic() - self.synced >= self.SYNC:
            self.sync()
        return self.machine.now() + self.offset

    def sync(self) -> None:
        with self.lock:
            try:
                before = self.machine.now()
                server = self.db.server_time()
                after = self.machine.now()
            except DatabaseUnavailable as error:
                log.warning("database clock not read (%s); using the last offset", error)
            else:
                self.offset = server - (before + (after - before) / 2)
            self.synced = time.monotonic()


def next_slot(start: datetime, every: timedelta, now: datetime) -> datetime:
    """The first of start + every, start + 2 * every ... that is after `now`."""
    passed = max(int((now - start) / every), 0)
    return start + every * (passed + 1)
