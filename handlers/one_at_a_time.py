"""Work on a thread of its own, waited for at most so long: a database that hangs holds none
of the server's threads (/healthz, /metrics, pages and commands; handlers/deadline.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")


class Waited(Exception):
    """OneAtATime's work has not ended within the wait: it began `seconds` ago."""

    def __init__(self, seconds: float):
        super().__init__(f"{seconds:.0f} s")
        self.seconds = seconds


class OneAtATime(Generic[T]):
    """`work` on a daemon thread of its own (named `name`), one run at a time, its result waited
    for at most so long. A database that hangs without closing anything (a server stopped, or
    stuck on its storage, still takes connections and acknowledges every byte, so no timeout of
    the driver fires, and a pooled connection waits for ever) left each /healthz or /metrics
    unanswered, holding a server thread and a connection: a monitor asking every few seconds
    would in time hold every thread the server has. Now each request meanwhile waits on the
    same run, and is answered once its wait is up."""

    def __init__(self, work: Callable[[], T], *, name: str):
        self._work = work
        self._name = name
        self._lock = threading.Lock()
        self._running: Future[T] | None = None
        self._began = 0.0

    def result(self, wait: float) -> T:
        """`work()`'s result (its errors propagate), or Waited after `wait` seconds."""
        with self._lock:
            if self._running is None or self._running.done():
                self._began = time.monotonic()
                self._running = in_background(self._work, name=self._name)
            running, began = self._running, self._began
        try:
            return running.result(timeout=wait)
        except TimeoutError:
            raise Waited(time.monotonic() - began) from None


def in_time(work: Callable[[], T], wait: float, *, name: str) -> T:
    """`work()` on a daemon thread of its own, its result (or its error), or Waited after
    `wait` seconds, the thread left to finish when the database answers. For a page whose
    every request looks at something of its own (a family's status link), so that a hung
    database holds none of the server's threads past `wait`."""
    began = time.monotonic()
    future = in_background(work, name=name)
    try:
        return future.result(timeout=wait)
    except TimeoutError:
        raise Waited(time.monotonic() - began) from None


def in_background(work: Callable[[], T], *, name: str) -> Future[T]:
    """`work` on a daemon thread named `name`, its result or error in the future returned: a
    thread stuck on a stalled database never blocks shutdown."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as error:  # noqa: BLE001 - handed to whoever waits on the future
            future.set_exception(error)

    threading.Thread(target=run, daemon=True, name=name).start()
    return future
