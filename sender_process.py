"""On PostgreSQL the bot sends its outbox from a second process of its own.

One process runs Python on one core at a time. A message sent costs the bot about 2 ms of it
(the platform's call and its record), and each request form queues two (the team's card and the
bleep-holder's direct message): under a burst, the answers to nurses' forms and to the team's
presses waited behind those sends. So the bot (the parent) starts `python bot.py sender` beside
itself, which runs the outbox drain (and opens `/rapidreview`'s forms, below) on the machine's
other core.

The parent keeps a standby drain that claims only what has waited STANDBY past due, so a
sender that has fallen behind, or has nothing claimed when it stops, delays a message by about
that much. What a sender has claimed and not begun is handed back within the drain's five
seconds (reviews.outbox.DRAIN_TIME) while it runs; what one holds when it dies (or is killed,
hung) goes again as soon as the parent sees it end (`on_dead`: its claims carry its name,
reviews.outbox.DRAINER), not when its lease (15 s) runs out, as a killed replica's does. The
two take rows by lease in the database, as replicas do, so each message goes once.

The parent watches its sender: the sender writes a byte down a pipe after each drain, and one
silent for SILENT_AFTER (hung, stopped, its scheduler dead) is killed. One that has ended is
said (ERROR, and a /healthz warning until its successor's first drain) and started again after
a pause that grows while it keeps ending.

The sender stops when its standard input closes, which is how the parent stops it, and how a
parent that died (kill -9) is noticed: it records the sends under way first. It ignores Ctrl-C
and SIGTERM, which reach the whole process group at once, so a stop never cuts a send short.
It runs only when the parent starts it (SENDER_ENV names the pipe), never by hand.

The parent also hands its sender the request and check-in forms that `/rapidreview` opens, a
numbered line each down the sender's input (`hand_over`, handlers/slack/form_relay.py): opening
one was a third of the bot's CPU in a burst of commands. The sender says down the pipe, every
TAKES_LINES_EVERY, that it takes lines, and when it is done with each. Only a sender that has said
so in the last HAND_OVER_SILENT and has done every line handed over more than LINE_LAG ago is
handed one; otherwise the parent does the work itself. Lines a sender ends, or is stopped,
without having done go to `on_lost`, as do those it holds while silent for GIVE_UP_SILENT
(hung) or has not done within GIVE_UP_AFTER: a nurse is told within seconds, not when a hung
sender is killed.

PostgreSQL only: on SQLite two processes' writes would wait on the file's one lock (and sleep
in its busy handler), so a bot on SQLite sends from its one process.
"""

from __future__ import annotations

import functools
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from reviews.outbox import DRAINER_ENV

log = logging.getLogger(__name__)

STANDBY = timedelta(seconds=2)
SILENT_AFTER = 30.0  # seconds without a drain ending: a drain takes at most 5 s and its sends
RESTART_AFTER = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds after each end in a row; the last repeats
STEADY_AFTER = 60.0  # a sender that ran this long has recovered: the next end waits 1 s again
COVERED_SAID_EVERY = 60.0  # seconds between warnings that the bot sent what the sender left
HAND_OVER_SILENT = 2.0  # seconds: a sender not saying it takes lines for longer is handed none
TAKES_LINES_EVERY = 0.5  # seconds between a sender's sayings that it takes lines
LINE_LAG = 1.0  # seconds: while a line handed over longer ago is not done, none more is handed
# Lines the sender has not said are done are given up (on_lost: each nurse is told the form may
# not have opened) once it has said nothing for GIVE_UP_SILENT (hung: Slack's trigger, 3 s, is
# spent), or after GIVE_UP_AFTER while it talks: past the longest it takes to tell the nurse
# itself (its FORM_WAIT of 2 s, Slack's 10 s timeout on the form, 10 s more on telling the
# nurse), so a nurse is not told twice. Not only when it is killed, SILENT_AFTER on.
GIVE_UP_SILENT = 3.0
GIVE_UP_AFTER = 25.0
STOP_WITHIN = 8.0  # a sender told to stop exits after this, its sends recorded or not
# The longest line the bot writes to its sender's input: POSIX writes a pipe's bytes whole, never
# interleaved with another thread's, only up to PIPE_BUF (4,096 bytes on Linux).
LINE_BYTES = 4096
SENDER_ENV = "RAPIDREVIEW_SENDER_BEATS"  # the pipe the sender tells its bot things down:
# BEAT after each drain; TAKES_LINES every TAKES_LINES_EVERY from a thread of its own, when it acts
# on lines handed over (a drain may take 5 s in a surge: these go on meanwhile); and b"+N\n" when
# the line numbered N is done. Each write is one whole token.
BEAT, TAKES_LINES, DONE = b".", b"L", b"+"
ENDED = (
    "the sender process has stopped; this process sends what has waited over "
    f"{STANDBY.total_seconds():g} s until a new one has finished a drain"
)


def command() -> list[str]:
    """How the parent starts its sender: this Python, this bot.py."""
    return [sys.executable, str(Path(__file__).with_name("bot.py")), "sender"]


class SenderProcess:
    """The parent's handle on its sender process: start it, check on it each second, stop it."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        on_warning: Callable[[str | None], None] = lambda _warning: None,
        on_lost: Callable[[list[bytes]], None] = lambda _lines: None,
        on_dead: Callable[[str], object] = lambda _drainer: None,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.argv = list(argv)
        self.on_warning = on_warning
        self.on_lost = on_lost
        self.on_dead = on_dead
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._drainer = ""  # how the running sender names its claims (reviews.outbox.DRAINER)
        self._beats: int | None = None  # the pipe's end the sender's bytes arrive at
        self._started_at = self._heard_at = 0.0
        self._heard = False  # a drain has ended since this sender started
        self._takes_lines = False  # it has said it acts on lines handed over
        self._lines_at = 0.0  # when it last said so
        self._forms_said = False  # the log has said this sender takes lines
        self._handed: dict[int, tuple[float, bytes]] = {}  # number -> (when, line), not yet done
        self._numbered = 0  # the lines handed over so far, to any sender
        self._said = b""  # the start of a token whose end has not yet arrived
        self._ends = 0  # in a row, each soon after its start
        self._restart_at = 0.0
        self._stopping = False
        self._covered, self._covered_said = 0, -COVERED_SAID_EVERY

    @property
    def state(self) -> str:
        """ "sending" (it has finished a drain since it started), "starting", or "stopped" (none
        running: it ended, and the next has not yet started)."""
        with self._lock:
            if self._process is None:
                return "stopped"
            return "sending" if self._heard else "starting"

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._process.pid if self._process is not None else None

    def start(self) -> None:
        with self._lock:
            self._spawn()

    def hung(self, stale_after: float) -> str | None:
        """Why /healthz should say 503 for the sender: a sender running that has not ended a
        drain for `stale_after` (a send that hangs, as Slack answering after 10 s), as the bot's
        own drain would say on SQLite; None otherwise. One that has ended is a warning instead
        (the bot covers while it restarts), as is one starting (not yet heard from: a busy
        machine may take seconds to start it); one silent for SILENT_AFTER is killed."""
        with self._lock:
            if self._process is None or self._stopping:
                return None
            now = self._monotonic()
            self._listen(now)
            if not self._heard:
                return None
            silent = now - self._heard_at
            if silent <= stale_after:
                return None
            return f"outbox has not completed for {silent:.0f} s (in the sender process)"

    def check(self) -> None:
        """Once a second (the parent's scheduler): kill a sender silent for SILENT_AFTER, say
        one that has ended, and start another when its pause is over."""
        with self._lock:
            if self._stopping:
                return
            now = self._monotonic()
            if self._process is not None:
                self._listen(now)
                self._give_up(now)
                code = self._process.poll()
                if code is None:
                    silent = now - self._heard_at
                    if silent >= SILENT_AFTER:
                        log.error(
                            "the sender process (%s) has not ended a drain for %.0f s: stopping it",
                            self._process.pid,
                            silent,
                        )
                        self._process.kill()
                        code = self._process.wait()
                    else:
                        if now - self._started_at >= STEADY_AFTER:
                            self._ends = 0
                        return
                self._ended(code, now)
            if now >= self._restart_at:
                self._spawn()

    def stop(self, timeout: float = STOP_WITHIN + 2) -> None:
        """Close the sender's input and wait for it to record its sends under way and exit;
        lines it had not done by then go to `on_lost`."""
        with self._lock:
            self._stopping = True
            process, self._process = self._process, None
        if process is None:
            with self._lock:
                self._close_beats()
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with self._lock:
            self._listen(self._monotonic())  # its last replies
            self._close_beats()
            lost = [line for _, line in self._handed.values()]
            self._handed.clear()
            drainer = self._drainer
        if lost:
            self.on_lost(lost)  # it stopped (or was killed at STOP_WITHIN) before doing them
        self.on_dead(drainer)  # what a sender killed at STOP_WITHIN held

    def hand_over(self, line: bytes) -> bool:
        """Write `line` (one line, ending in its only newline) to the sender's input, numbered,
        for the sender to act on (a form to open, handlers/slack/form_relay.py) and say when it
        is done. Only to a sender that has said it takes lines in the last HAND_OVER_SILENT and
        has done every line handed over more than LINE_LAG ago. False, having written nothing,
        otherwise, or when the numbered line would be over LINE_BYTES or the sender's input is
        full: then the caller does the work itself. If the sender ends, falls silent or takes
        too long before saying a line is done, `on_lost` is given it (it may not have been
        acted on)."""
        if not line.endswith(b"\n") or b"\n" in line[:-1]:
            return False
        with self._lock:
            process = self._process
            if process is None or process.stdin is None or self._stopping:
                return False
            now = self._monotonic()
            self._listen(now)
            self._give_up(now)
            if not self._takes_lines or now - self._lines_at > HAND_OVER_SILENT:
                return False
            if self._handed and now - next(iter(self._handed.values()))[0] > LINE_LAG:
                return False  # it has fallen behind (Slack slow to answer it, or it is stuck)
            number = self._numbered
            numbered = b"%d " % number + line
            if len(numbered) > LINE_BYTES:
                return False  # longer, it could interleave with another thread's
            try:
                os.write(process.stdin.fileno(), numbered)  # whole or not at all (PIPE_BUF)
            except (BlockingIOError, BrokenPipeError):
                return False
            self._numbered += 1
            self._handed[number] = (now, line)
            return True

    def covered(self, handled: int) -> None:
        """The bot's standby drain handled `handled` messages the sender had left: said at most
        once a minute (a sender fallen behind in a surge, or one stopped)."""
        if not handled:
            return
        with self._lock:
            now = self._monotonic()
            self._covered += handled
            if now - self._covered_said < COVERED_SAID_EVERY:
                return
            count, self._covered, self._covered_said = self._covered, 0, now
        log.warning(
            "this process sent %s message(s) that had waited over %g s for the sender process",
            count,
            STANDBY.total_seconds(),
        )

    def _listen(self, now: float) -> None:
        """Take what the sender has written since the last look: beats, and lines done."""
        if self._beats is None:
            return
        try:
            heard = self._said + os.read(self._beats, 65536)
        except BlockingIOError:
            return
        at, beat, lines = 0, False, False
        while at < len(heard):
            token = heard[at : at + 1]
            if token == DONE:
                end = heard.find(b"\n", at)
                if end < 0:
                    break  # the rest of it comes with the next read
                number = heard[at + 1 : end]
                if number.isdigit():
                    self._handed.pop(int(number), None)
                at = end + 1
                continue
            beat = beat or token == BEAT
            lines = lines or token == TAKES_LINES
            at += 1
        self._said = heard[at:][:32]  # never more than a part of one token
        if lines:
            self._takes_lines, self._lines_at = True, now
            if not self._forms_said and self._process is not None:
                self._forms_said = True
                log.info("the sender process (%s) opens /rapidreview's forms", self._process.pid)
        if beat:
            self._heard_at = now
            if not self._heard:
                self._heard = True
                self.on_warning(None)

    def _give_up(self, now: float) -> None:
        """Lines a silent sender holds, or any it has not done within GIVE_UP_AFTER, go to
        `on_lost` now; a "done" that comes for one later is ignored."""
        if not self._handed:
            return
        silent = now - self._lines_at
        if silent > GIVE_UP_SILENT:
            given_up = list(self._handed)
        else:
            given_up = [n for n, (at, _) in self._handed.items() if now - at > GIVE_UP_AFTER]
        if not given_up:
            return
        pid = self._process.pid if self._process is not None else None
        if silent > GIVE_UP_SILENT:
            log.warning(
                "the sender process (%s) has said nothing for %.0f s: the %s form(s) handed to "
                "it are given up",
                pid,
                silent,
                len(given_up),
            )
        else:
            log.warning(
                "the sender process (%s) has not said it is done with %s form(s) handed to it "
                "over %.0f s ago: they are given up",
                pid,
                len(given_up),
                GIVE_UP_AFTER,
            )
        self.on_lost([self._handed.pop(number)[1] for number in given_up])

    def _ended(self, code: int, now: float) -> None:
        assert self._process is not None
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._close_beats()
        lost = [line for _, line in self._handed.values()]
        self._handed.clear()
        if lost:
            self.on_lost(lost)
        # Off the lock: hand_over must not wait on the database.
        threading.Thread(target=self.on_dead, args=(self._drainer,), name="sender-ended").start()
        pause = RESTART_AFTER[min(self._ends, len(RESTART_AFTER) - 1)]
        self._ends += 1
        self._process, self._restart_at = None, now + pause
        self.on_warning(ENDED)
        log.error(
            "the sender process stopped (exit code %s); this process sends what has waited "
            "over %g s, and starts another in %g s",
            code,
            STANDBY.total_seconds(),
            pause,
        )

    def _spawn(self) -> None:
        beats, their_end = os.pipe()
        os.set_blocking(beats, False)
        drainer = uuid.uuid4().hex
        try:
            self._process = subprocess.Popen(  # noqa: S603 - our own bot.py, no shell
                self.argv,
                stdin=subprocess.PIPE,
                pass_fds=(their_end,),
                env={**os.environ, SENDER_ENV: str(their_end), DRAINER_ENV: drainer},
            )
        except OSError as error:
            os.close(beats)
            self._restart_at = self._monotonic() + RESTART_AFTER[-1]
            self.on_warning(ENDED)
            log.error("the sender process could not be started: %s", error)
            return
        finally:
            os.close(their_end)
        if self._process.stdin is not None:
            os.set_blocking(self._process.stdin.fileno(), False)  # hand_over never waits
        self._beats, self._drainer = beats, drainer
        self._started_at = self._heard_at = self._monotonic()
        self._heard = self._takes_lines = self._forms_said = False
        self._said = b""
        log.info("sending from process %s", self._process.pid)

    def _close_beats(self) -> None:
        if self._beats is not None:
            os.close(self._beats)
            self._beats = None


def is_sender(argv: Sequence[str]) -> bool:
    """Whether this process is a sender its bot started (never one run by hand)."""
    return list(argv) == ["sender"] and SENDER_ENV in os.environ


def ignore_stop_signals() -> None:
    """From the sender's first moment: its bot says when to stop, by closing its input."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def serve(
    start_drain: Callable[[Callable[[], None]], Any],
    stopping: threading.Event,
    on_line: Callable[[bytes, Callable[[], None]], None] | None = None,
    stop_lines: Callable[[], None] = lambda: None,
) -> int:
    """`python bot.py sender`: `start_drain(beat)` (a started scheduler running only the outbox
    drain, calling `beat` as each drain ends) until standard input closes. With `on_line`, it
    says it takes lines, and passes `on_line(line, done)` each line its bot hands over
    (SenderProcess.hand_over), `done` to be called once the line is acted on. Then `stopping`
    is set, so the drain begins no more sends, those under way are recorded, `stop_lines`
    waits for what the lines started, and the process exits (within STOP_WITHIN). Returns the
    exit code."""
    beats = int(os.environ[SENDER_ENV])
    os.set_blocking(beats, False)

    def say(token: bytes) -> None:
        try:
            os.write(beats, token)
        except (BlockingIOError, BrokenPipeError):
            pass  # the bot is behind reading, or gone (then the input closes too)

    scheduler = start_drain(lambda: say(BEAT))
    if on_line is not None:

        def keep_saying() -> None:
            say(TAKES_LINES)
            while not stopping.wait(TAKES_LINES_EVERY):
                say(TAKES_LINES)

        threading.Thread(target=keep_saying, name="takes-lines", daemon=True).start()
    stdin = sys.stdin.fileno()
    pending = b""
    while True:
        readable, _, _ = select.select([stdin], [], [], None)
        if not readable:
            continue
        read = os.read(stdin, 65536)
        if not read:
            break  # the bot closed it, or died
        *lines, pending = (pending + read).split(b"\n")
        if len(pending) > LINE_BYTES:
            pending = b""  # never a line of the bot's: let it not grow
        for numbered in lines:
            number, _, line = numbered.partition(b" ")
            if on_line is None or not number.isdigit():
                log.error("the bot handed over a line this process cannot act on")
                continue
            on_line(line, functools.partial(say, DONE + number + b"\n"))
    # A send that never returns must not keep a stopped sender alive.
    timer = threading.Timer(STOP_WITHIN, os._exit, (1,))
    timer.daemon = True
    timer.start()
    stopping.set()
    scheduler.shutdown(wait=True)
    stop_lines()
    return 0
