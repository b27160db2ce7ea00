"""On PostgreSQL the bot sends its outbox from a second process of its own.

One process has one interpreter lock. A message sent costs the bot about 2 ms of CPU (the
platform's call and its record), and each request form queues two (the team's card and the
bleep-holder's direct message): under a burst, the answers to nurses' forms and to the team's
presses waited for the lock behind those sends. So the bot (the parent) starts
`python bot.py sender` beside itself, which runs the outbox drain and nothing else, on the
machine's other core.

The parent keeps a standby drain that claims only what has waited STANDBY past due. A sender
process that dies, hangs or falls behind therefore delays nothing by more than that: the parent
says so (log and /healthz), sends meanwhile, and starts another. A hung sender stops itself
(HUNG_AFTER) for that. The two drain as replicas do: by leases in the database, so each message
goes once.

The sender stops when its standard input closes, which is how the parent stops it, and how a
parent that died (kill -9) is noticed: it records the sends under way first. It ignores Ctrl-C
and SIGTERM, which reach the whole process group at once, so a stop never cuts a send short.

PostgreSQL only: on SQLite two processes' writes would wait on the file's one lock (and sleep
in its busy handler), so a bot on SQLite sends from its one process.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

STANDBY = timedelta(seconds=2)
RESTART_AFTER = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds after each stop in a row; the last repeats
STEADY_AFTER = 60.0  # a sender that ran this long has recovered: the next stop waits 1 s again
HUNG_AFTER = 60.0  # a drain running this long is hung (each stops claiming after 5 s)
STOP_WITHIN = 20.0  # a sender told to stop exits after this, sends recorded or not
WARNING = (
    "the sender process is not running; this process sends what has waited over "
    f"{STANDBY.seconds} s until it is back"
)


def command() -> list[str]:
    """How the parent starts its sender: this Python, this bot.py."""
    return [sys.executable, str(Path(__file__).with_name("bot.py")), "sender"]


class SenderProcess:
    """The parent's handle on its sender process: start it, check on it each second (a stopped
    one is said and started again, after a pause that grows while it keeps stopping), stop it."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        on_warning: Callable[[str | None], None] = lambda _warning: None,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.argv = list(argv)
        self.on_warning = on_warning
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._stops = 0  # in a row, each soon after its start
        self._restart_at = 0.0
        self._stopping = False

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._process.pid if self._process is not None else None

    def start(self) -> None:
        with self._lock:
            self._spawn()

    def check(self) -> None:
        """Once a second (the parent's scheduler): restart a sender that has stopped."""
        with self._lock:
            if self._stopping:
                return
            now = self._monotonic()
            if self._process is not None:
                code = self._process.poll()
                if code is None:
                    if now - self._started_at >= STEADY_AFTER:
                        self._stops = 0
                    return
                if self._process.stdin is not None:
                    self._process.stdin.close()
                pause = RESTART_AFTER[min(self._stops, len(RESTART_AFTER) - 1)]
                self._stops += 1
                self._process, self._restart_at = None, now + pause
                self.on_warning(WARNING)
                log.error(
                    "the sender process stopped (exit code %s); this process sends what has "
                    "waited over %s s, and starts another in %.0f s",
                    code,
                    STANDBY.seconds,
                    pause,
                )
            if now >= self._restart_at:
                self._spawn()

    def stop(self, timeout: float = STOP_WITHIN + 5) -> None:
        """Close the sender's input and wait for it to record its sends under way and exit."""
        with self._lock:
            self._stopping = True
            process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _spawn(self) -> None:
        try:
            self._process = subprocess.Popen(self.argv, stdin=subprocess.PIPE)  # noqa: S603
        except OSError as error:
            self._restart_at = self._monotonic() + RESTART_AFTER[-1]
            self.on_warning(WARNING)
            log.error("the sender process could not be started: %s", error)
            return
        self._started_at = self._monotonic()
        self.on_warning(None)
        log.info("sending from process %s", self._process.pid)


def serve(
    start_drain: Callable[[], Any],
    running_for: Callable[[], float | None],
    stdin: IO[bytes] | None = None,
) -> int:
    """`python bot.py sender`: `start_drain()` (a started scheduler, with only the outbox drain)
    until standard input closes; then its sends under way are recorded and the process exits
    (within STOP_WITHIN). A drain that has run HUNG_AFTER ends the process (exit code 70), for
    the parent to start another. Returns the exit code."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fd = (stdin or sys.stdin.buffer).fileno()
    scheduler = start_drain()
    code = 0
    while True:
        readable, _, _ = select.select([fd], [], [], 1.0)
        if readable and not os.read(fd, 4096):
            break  # the parent closed it, or died
        running = running_for()
        if running is not None and running > HUNG_AFTER:
            log.error("the outbox drain has run for %.0f s: this sender stops", running)
            code = 70
            break
    if code:
        logging.shutdown()
        os._exit(code)  # the hung drain's thread would hold the interpreter's exit
    # A send that never returns must not keep a stopped sender alive.
    timer = threading.Timer(STOP_WITHIN, os._exit, (code,))
    timer.daemon = True
    timer.start()
    scheduler.shutdown(wait=True)
    return code
