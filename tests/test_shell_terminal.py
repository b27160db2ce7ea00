"""The shell's terminal while the bot prints on its own: what the person has typed so far is
drawn again below each message, and typing during a stream of messages never takes the shell
down (reading the half-typed line once aborted the whole process: handlers/shell/terminal.py)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A terminal at a prompt, with a thread printing `message` every `every` seconds (0: flat out).
CHILD = """
import sys, threading, time
sys.path.insert(0, {root!r})
from handlers.shell.terminal import Terminal
terminal = Terminal(sys.stdout, threading.Lock(), interactive=True)
def messages():
    while True:
        terminal.background("a message from the bot")
        time.sleep({every})
threading.Thread(target=messages, daemon=True).start()
while True:
    if terminal.ask("> ").strip() == "quit":
        print("bye")
        break
"""

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")


@contextmanager
def terminal_child(every: float) -> Iterator[int]:
    """The child on a pseudo-terminal; yields the terminal's file descriptor (non-blocking).
    A subprocess, not pty.fork(): forking a threaded test process is unsafe."""
    fd, child_end = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), every=every)],
        stdin=child_end,
        stdout=child_end,
        stderr=child_end,
        start_new_session=True,
    )
    os.close(child_end)
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    try:
        yield fd
    finally:
        child.kill()
        child.wait(timeout=10)
        os.close(fd)


def read_until(fd: int, needle: bytes, timeout: float = 10) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} never appeared; the screen ends: {seen[-300:]!r}")
        if select.select([fd], [], [], 0.1)[0]:
            seen += os.read(fd, 65536)
    return seen


def test_what_was_typed_is_drawn_again_below_a_message() -> None:
    with terminal_child(every=0.3) as fd:
        read_until(fd, b"> ")
        os.write(fd, "ack RR-00é".encode())  # not yet sent
        screen = read_until(fd, "a message from the bot\r\n> ack RR-00é".encode())
        assert screen


def test_typing_through_a_stream_of_messages_never_takes_the_shell_down() -> None:
    line = ("ack RR-0001 é" * 20).encode() + b"\x15"  # a long line, then Ctrl-U clears it
    with terminal_child(every=0) as fd:
        read_until(fd, b"> ")
        end = time.monotonic() + 3
        tail = b""
        while time.monotonic() < end:
            readable, writable, _ = select.select([fd], [fd], [], 0.05)
            if readable:
                try:
                    tail = (tail + os.read(fd, 65536))[-2000:]
                except OSError:  # the child is gone
                    break
            if writable:
                try:
                    os.write(fd, line)
                except BlockingIOError:
                    pass
        assert b"Assertion" not in tail
        os.write(fd, b"\x15quit\r")
        read_until(fd, b"bye")


def test_a_ward_is_chosen_by_its_name_never_by_its_place_on_a_list() -> None:
    """Fourteen wards: a nurse typing "12" means Ward 12, not the twelfth ward listed (which
    would send the team to the wrong ward)."""
    from handlers.shell.forms import Question

    wards = [f"Ward {n}" for n in range(4, 18)]  # the twelfth on the list is Ward 15
    ward = Question("ward", "Ward:", {w: w for w in wards}, named=True)
    assert ward.value("12") == "Ward 12"
    assert ward.value("ward 7") == "Ward 7"
    assert ward.value("Ward 40") == "Ward 40"  # not listed: kept as typed
    assert ward.value("Ward") == "Ward"  # every ward has the word: kept as typed
    assert "[1]" not in ward.prompt() and "Ward 4, Ward 5" in ward.prompt()
    described = ["Ward 3 (Level 4)", "Ward 12 (Elderly Care)", "Cedar Ward (Surgery)"]
    ward = Question("ward", "Ward:", {w: w for w in described}, named=True)
    assert ward.value("4") == "4"  # Level 4 is a description: not a ward called 4
    assert ward.value("ward 12") == "Ward 12 (Elderly Care)"  # its own name, as people say it
    assert ward.value("cedar ward") == "Cedar Ward (Surgery)"
    assert ward.value("Surgery") == "Surgery"
