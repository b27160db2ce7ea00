"""`python bot.py ARGS` in a pseudo-terminal, as a person at a keyboard runs it.

The bot gets a real terminal (so readline is on and Ctrl-C is a signal from the terminal), and
the test reads the screen as the person would see it. Standard library only: pty and select.
"""

from __future__ import annotations

import os
import platform
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.support.process import ROOT, end

# The child takes the terminal, and Ctrl-C back: a suite started in the background (`&`, as a
# non-interactive shell does) passes SIGINT down ignored, and Python then never turns it into
# KeyboardInterrupt, where a person's shell always leaves it as the default.
TAKE_TERMINAL = (
    "import fcntl, os, signal, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)
CTRL_C, CTRL_D, UP = b"\x03", b"\x04", b"\x1b[A"
# Colour, cursor and line-clearing sequences: what the person sees is the text around them.
# The system calls readline's wait for a key blocks in (read, poll, select, pselect6, ppoll).
WAITING_FOR_A_KEY = {"x86_64": {"0", "7", "23", "270", "271"}, "aarch64": {"63", "72", "73"}}
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")


class PtyBot:
    def __init__(self, *args: str, env: dict[str, str], cwd: Path = ROOT):
        fd, child_end = pty.openpty()
        # subprocess, not pty.fork(): forking a threaded test process is unsafe. The child
        # starts a session and takes the terminal as its own, so Ctrl-C there is a SIGINT.
        self.process = subprocess.Popen(
            [sys.executable, "-c", TAKE_TERMINAL, str(ROOT / "bot.py"), *args],
            stdin=child_end,
            stdout=child_end,
            stderr=child_end,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        os.close(child_end)
        self.fd = fd
        self.screen = ""  # everything shown so far, escapes removed
        self.seen = 0  # how much of it expect() has gone past

    def type(self, text: str) -> None:
        self.press(text.encode() + b"\r")

    def press(self, keys: bytes) -> None:
        if keys in (CTRL_C, CTRL_D):
            # A person is never this quick. CPython's readline shows the prompt before it
            # starts waiting for a key, and a Ctrl-C in between is only seen at the next key:
            # wait until the bot waits, however long a loaded machine takes to get there.
            self.wait_for_a_key()
        os.write(self.fd, keys)

    def wait_for_a_key(self, timeout: float = 30) -> None:
        """Until the bot's main thread is blocked waiting for the terminal (Linux: what
        /proc says it is doing); elsewhere, a pause longer than a quiet machine needs."""
        calls = WAITING_FOR_A_KEY.get(platform.machine())
        where = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/syscall")
        deadline = time.monotonic() + timeout
        while calls is not None and time.monotonic() < deadline:
            try:
                doing = where.read_text().split()
            except OSError:
                break  # no /proc, or not ours to read
            if doing and doing[0] in calls:
                return
            time.sleep(0.02)
        time.sleep(0.3)

    def expect(self, needle: str, timeout: float = 20) -> str:
        """What appeared since the last expect, up to and including `needle`."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.screen.find(needle, self.seen)
            if found >= 0:
                shown = self.screen[self.seen : found + len(needle)]
                self.seen = found + len(needle)
                return shown
            if time.monotonic() > deadline or not self._read(deadline - time.monotonic()):
                raise AssertionError(f"{needle!r} never appeared; the screen:\n{self.screen}")

    def rest(self, timeout: float = 1.0) -> str:
        """Whatever appears in the next `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(deadline - time.monotonic()):
            pass
        shown, self.seen = self.screen[self.seen :], len(self.screen)
        return shown

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return True  # nothing yet; the caller checks its deadline
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # the bot has gone and its side of the terminal with it
            return False
        if not chunk:
            return False
        self.screen += ESCAPES.sub("", chunk.decode(errors="replace"))
        return True

    def wait(self, timeout: float = 30) -> int:
        """The exit status, once the bot ends by itself."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.1)
        if self.process.poll() is None:
            raise AssertionError(f"the bot did not exit; the screen:\n{self.screen}")
        return self.process.returncode

    def stop(self) -> None:
        end(self.process)
        os.close(self.fd)
