"""Log lines as text (the default) or, with LOG_FORMAT=json, one JSON object a line.

The standard library's own Formatter rather than structlog: a few lines do it, every library's
logger (uvicorn, APScheduler, slack_sdk) already goes through the root handler, and nothing
new has to be installed, pinned and kept up to date on a trust's server.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REFERENCE = re.compile(r"\bRR-\d{4,}\b")


class Sparing:
    """A log line said at most once every `every` seconds, for what anyone on the internet can
    cause (a forged Teams request): a flood of them must not flood the log, or bury the lines
    that matter. The next line said counts those held back meanwhile."""

    def __init__(
        self,
        logger: logging.Logger,
        every: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.logger = logger
        self.every = every
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._said_at = float("-inf")
        self._held = 0

    def log(self, level: int, message: str, *args: object) -> None:
        with self._lock:
            now = self._monotonic()
            if now - self._said_at < self.every:
                self._held += 1
                return
            held, self._held, self._said_at = self._held, 0, now
        if held:
            message += f" (and {held} more like it in the last {self.every:g} s or longer)"
        self.logger.log(level, message, *args)


class JsonFormatter(logging.Formatter):
    """time, level, logger, message; `reference` when the line is about one request (given as
    `extra={"reference": ...}`, or the first RR-number in the message); `exception` if any;
    `process` for a process other than the bot itself ("sender")."""

    def __init__(self, process: str | None = None):
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        if self.process:
            line["process"] = self.process
        found = REFERENCE.search(message)
        reference = getattr(record, "reference", None) or (found.group() if found else None)
        if reference:
            line["reference"] = reference
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str, log_format: str, *, process: str | None = None) -> None:
    """The root logger at `level`, writing `log_format` ("text" or "json") to stderr; a
    `process` other than the bot itself (its sender) is named on every line."""
    handler = logging.StreamHandler()
    text = TEXT.replace("%(name)s", f"[{process}] %(name)s") if process else TEXT
    handler.setFormatter(
        JsonFormatter(process) if log_format == "json" else logging.Formatter(text)
    )
    logging.basicConfig(level=level, handlers=[handler])
    if log_format == "json":
        # An error nobody foresaw (a database upgraded by a newer release) would otherwise
        # print a bare traceback into the JSON log, where its shipper chokes on it.
        sys.excepthook = _log_uncaught
        # Likewise an error nobody caught in a thread of our own or a library's; the thread
        # ends, as it would have, and the process carries on.
        threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(
    kind: type[BaseException], error: BaseException, trace: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    logging.getLogger("rapidreview").critical(
        "stopped by an unexpected error", exc_info=(kind, error, trace)
    )


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if issubclass(args.exc_type, SystemExit):
        return  # as Python's own hook: a thread may end itself so
    name = args.thread.name if args.thread is not None else "unknown"
    error = args.exc_value
    logging.getLogger("rapidreview").error(
        "thread %s stopped by an unexpected error (%s); the process carries on without it",
        name,
        args.exc_type.__name__,
        exc_info=(args.exc_type, error, args.exc_traceback) if error is not None else None,
    )


def refusal_line(message: str, log_format: str, *, process: str | None = None) -> str:
    """Why the bot will not start (or a command will not run), as one line: "rapidreview:
    MESSAGE" in text; with LOG_FORMAT=json, one object like every other line of the log (level
    ERROR, logger "rapidreview"), so that a log shipper reading JSON takes it too."""
    if log_format != "json":
        return f"rapidreview: {message}"
    record = logging.LogRecord("rapidreview", logging.ERROR, __file__, 0, message, None, None)
    return JsonFormatter(process).format(record)
