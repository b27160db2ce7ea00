"""The keyboard and the screen of the local shell.

Reading goes through GNU readline when the shell runs in a terminal: arrow keys edit the line
and recall earlier commands, and the prompt is written to stdout. Only commands go into the
history, never a form's answers (NHS numbers, call-back numbers, concerns), and the history is
never written to disk. Messages the bot sends while a person is typing are printed above the
prompt, which is then drawn again with what they had typed so far.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections.abc import Callable
from typing import TextIO

try:
    import readline
except ImportError:  # Python built without readline: plain line input still works
    readline = None  # type: ignore[assignment]

# Messages this close together are one burst: printed as one block, without blank lines.
BURST = 2.0


def typed_so_far() -> Callable[[], str]:
    """How another thread reads the half-typed line. readline edits its buffer on the reading
    thread without Python's lock, and readline.get_line_buffer() decodes that buffer with the C
    library's two-pass conversion: a key pressed between the passes aborted the whole process
    (a glibc assertion; seen in CI). GNU readline's buffer is copied as bytes instead, which
    cannot abort: at worst the line is redrawn a keystroke stale. Another readline (libedit)
    is read as before."""
    name = ctypes.util.find_library("readline")
    try:
        buffer = ctypes.c_char_p.in_dll(ctypes.CDLL(name), "rl_line_buffer") if name else None
    except (OSError, ValueError):  # not GNU readline's library, or not the symbol
        buffer = None
    if buffer is None:
        return readline.get_line_buffer
    return lambda: (buffer.value or b"").decode("utf-8", "replace")


class Terminal:
    def __init__(
        self,
        out: TextIO,
        lock: threading.Lock,
        read: Callable[[str], str] = input,
        interactive: bool = False,
    ):
        self.out, self.lock, self._read = out, lock, read
        self.interactive = interactive and readline is not None
        self.prompt: str | None = None  # the prompt waiting for an answer, if any
        self.last_background = 0.0
        if self.interactive:
            readline.set_auto_history(False)
            self._typed = typed_so_far()

    def say(self, text: str) -> None:
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()

    def ask(self, prompt: str, *, remember: bool = False) -> str:
        """One line typed at `prompt`; EOFError (Ctrl-D) or KeyboardInterrupt (Ctrl-C) as
        input() raises them. `remember` puts the line in the history (commands only)."""
        with self.lock:
            self.prompt = prompt
        try:
            line = self._read(prompt)
        finally:
            with self.lock:
                self.prompt = None
        if remember and self.interactive and line.strip():
            last = readline.get_history_item(readline.get_current_history_length())
            if line.strip() != last:  # the up arrow need not step over repeats
                readline.add_history(line.strip())
        return line

    def background(self, text: str) -> None:
        """Something the bot sent on its own (a card, an escalation, a warning), shown above
        the prompt; a new burst starts with a blank line."""
        with self.lock:
            now = time.monotonic()
            gap = "\n" if now - self.last_background > BURST else ""
            self.last_background = now
            if self.prompt is None or not self.interactive:
                self.out.write(f"{gap}{text}\n")
            else:
                # Clear the half-typed line, print above it, then give it back as it was.
                typed = self._typed()
                self.out.write(f"\r\x1b[K{gap}{text}\n{self.prompt}{typed}")
            self.out.flush()
