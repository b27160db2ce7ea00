"""A database that cannot write for want of disk: told once, shown by /healthz until it writes.

A full disk reaches the bot only as an error on a write: reads, and a write that changes
nothing, still succeed. SQLite says "database or disk is full" (SQLITE_FULL) when the disk
refuses to grow a file (ENOSPC), and "disk I/O error" (SQLITE_IOERR) when a write fails
otherwise: a failing disk, or a file past the process's size limit (EFBIG). PostgreSQL says
53100 disk_full (58030 io_error for a failing disk) from the server's own disk. Every write
that fails so is recorded here; the first of an outage is logged as an ERROR naming where
space must be freed, and /healthz names it until a write succeeds again (or, where no write
can prove it, until HOLD seconds pass with no write refused).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

FULL, IO_ERROR = "disk full", "disk I/O error"
SQLITE_FULL, SQLITE_IOERR = 13, 10  # primary result codes; extended ones keep them in the low byte
POSTGRES_STATES = {"53100": FULL, "58030": IO_ERROR}  # disk_full, io_error
HOLD = 60.0  # seconds a refused write is remembered when no later write can prove it mended
LOW_SPACE = 100 * 1024 * 1024  # bytes free under which /healthz warns and the log says so once
MB = 1024 * 1024


def storage_fault(error: BaseException) -> str | None:
    """FULL or IO_ERROR when `error` (the driver's, or SQLAlchemy's around it) says the
    database could not write for want of disk; None for any other error."""
    original = getattr(error, "orig", None) or error
    code = getattr(original, "sqlite_errorcode", None)
    if isinstance(code, int):
        return {SQLITE_FULL: FULL, SQLITE_IOERR: IO_ERROR}.get(code & 0xFF)
    return POSTGRES_STATES.get(str(getattr(original, "sqlstate", "")))


def driver_said(error: BaseException) -> str:
    """The first line of what the driver said. Only for errors that carry no request's words
    (a probe's, a refused write's): PostgreSQL's DETAIL, on its later lines, can quote a row."""
    original = getattr(error, "orig", None) or error.__cause__ or error
    original = getattr(original, "orig", None) or original
    lines = str(original).strip().splitlines()
    return lines[0][:200] if lines else type(original).__name__


def sqlite_directory(url: URL) -> Path | None:
    """The directory holding a SQLite database's files (the database, -wal and -shm)."""
    name = url.database or ""
    if name.startswith("file:"):
        name = name.removeprefix("file:")
    if not name or name == ":memory:" or url.get_backend_name() != "sqlite":
        return None
    return Path(name).resolve().parent


class WriteFaults:
    """Thread-safe: any thread's failed write records, /healthz reads."""

    def __init__(
        self,
        url: URL,
        *,
        hold: float = HOLD,
        low_space: int = LOW_SPACE,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.directory = sqlite_directory(url)
        self.where = (
            str(self.directory)
            if self.directory is not None
            else f"the database server's data disk ({url.host or 'local socket'})"
        )
        self.hold = hold
        self.low_space = low_space
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._kind: str | None = None
        self._said = ""
        self._since = self._last = 0.0
        self._refused = 0
        self._low = False  # free space below low_space, said once

    @property
    def active(self) -> bool:
        return self._kind is not None

    def failed(self, kind: str, said: str) -> None:
        """A write failed for want of disk; the first of an outage is logged as an ERROR."""
        now = self._monotonic()
        with self._lock:
            began = self._kind is None
            if began:
                self._since, self._refused = now, 0
            self._kind, self._said, self._last = kind, said, now
            self._refused += 1
            problem = self._problem()
        if began:
            free = self.free_bytes()
            there = f"; {free / MB:,.0f} MB free there" if free is not None else ""
            log.error("%s%s", problem, there)

    def wrote(self) -> None:
        """A write reached the disk: the outage, if one, is over."""
        with self._lock:
            if self._kind is None:
                return
            lasted, refused = self._monotonic() - self._since, self._refused
            self._kind = None
        log.warning(
            "the database writes again after %.0f s; %d write(s) were refused meanwhile",
            lasted,
            refused,
        )

    def problem(self) -> str | None:
        """Why a request cannot be recorded now, for /healthz; None if no write has failed for
        want of disk since the last that succeeded (or for `hold` seconds)."""
        with self._lock:
            if self._kind is None:
                return None
            if self._monotonic() - self._last <= self.hold:
                return self._problem()
            self._kind = None
        log.warning("the database has refused no write for %.0f s; taken as mended", self.hold)
        return None

    def _problem(self) -> str:
        if self._kind == FULL:
            return (
                f"the database cannot write: its disk is full ({self._said}); requests cannot "
                f"be recorded until space is freed on {self.where}"
            )
        return (
            f"the database cannot write: {self._kind} ({self._said}); requests cannot be "
            f"recorded until {self.where} takes writes again (is it full? is the disk failing?)"
        )

    def free_bytes(self) -> int | None:
        """Bytes free to this process on the SQLite database's filesystem; None for a server."""
        if self.directory is None:
            return None
        try:
            return shutil.disk_usage(self.directory).free
        except OSError:
            return None

    def space_warning(self, free: int | None) -> str | None:
        """A warning while `free` bytes is under `low_space` (logged once as it falls below)."""
        low = free is not None and free < self.low_space
        with self._lock:
            changed, self._low = low != self._low, low
        if free is None or not low:
            if changed:
                log.warning(
                    "free space on %s is back above %d MB", self.where, self.low_space // MB
                )
            return None
        warning = (
            f"only {free / MB:,.0f} MB free on {self.where}: the database stops recording "
            "requests when it is full"
        )
        if changed:
            log.warning("%s", warning)
        return warning
