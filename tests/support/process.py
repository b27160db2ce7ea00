"""Running the real bot as a user would: `python bot.py ...` in a subprocess, read as it talks."""

from __future__ import annotations

import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


# Below Linux's ephemeral range (32768-60999), from which every outgoing connection takes its
# own port: a port the kernel handed out as free was, once, taken by a connection to PostgreSQL
# before the bot it was meant for could bind it ("address already in use").
LISTEN_PORTS = range(20000, 32000)


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on now, outside the ephemeral range."""
    for _ in range(100):
        port = random.choice(LISTEN_PORTS)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {LISTEN_PORTS}")


def children(pid: int) -> list[int]:
    """The pids of `pid`'s living child processes (Linux's /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue  # the thread ended meanwhile
    return sorted(set(found))


def command_line(pid: int) -> str:
    """What `pid` runs, "" once it has ended."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def sender_of(pid: int) -> int | None:
    """The pid of bot `pid`'s sender process (on PostgreSQL, sender_process.py), if it runs."""
    return next((child for child in children(pid) if "bot.py sender" in command_line(child)), None)


def local_ports(pid: int) -> set[int]:
    """The local ports of `pid`'s open TCP connections (Linux's /proc): whose connection a
    server saw a call arrive on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def bot_environment(**settings: str) -> dict[str, str]:
    """A clean environment: nothing of the developer's .env or shell leaks into the bot."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TEAMS_"))}
    env.update(settings)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def end(process: subprocess.Popen) -> int:
    """SIGTERM, and SIGKILL if it has not ended 10 s later; its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def run_bot(
    *args: str, cwd: Path | str = ROOT, **settings: str
) -> subprocess.CompletedProcess[str]:
    """`python bot.py ARGS` run to its end in `cwd`, as an operator runs a command, with
    `settings` as its environment's (over a clean copy of this one: bot_environment)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "bot.py"), *args],
        cwd=cwd,
        env=bot_environment(**settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class BotProcess:
    """`python bot.py ARGS` with its output collected line by line."""

    def __init__(self, *args: str, env: dict[str, str], stdin: bool = False):
        self.process = subprocess.Popen(
            [sys.executable, "bot.py", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            # Its own process group: kill() stops the bot with its sender process, as a
            # container or a machine stopping would.
            start_new_session=True,
        )
        self.output: list[str] = []  # what wait_for has read so far
        self.log: list[str] = []  # everything the process printed
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.log.append(line)
            self._lines.put(line)

    def type(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def wait_for(self, needle: str, timeout: float = 20) -> str:
        """Everything printed up to and including the first line holding `needle`."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None and self._lines.empty():
                    break
                continue
            self.output.append(line)
            seen.append(line)
            if needle in line:
                return "".join(seen)
        raise AssertionError(f"{needle!r} never appeared; output so far:\n{''.join(self.output)}")

    def kill(self) -> None:
        """SIGKILL to the bot and its sender process (on PostgreSQL): no clean shutdown, no
        chance to finish anything."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it had ended, and its group with it
        self.process.wait(timeout=10)
        self.stop()

    def children(self) -> list[int]:
        """The pids of the processes the bot has started and that still run (its sender)."""
        return children(self.process.pid)

    def sender(self) -> int | None:
        """The pid of its sender process, if one runs."""
        return sender_of(self.process.pid)

    def stop(self) -> int:
        """SIGTERM (SIGKILL after 10 s); its exit code, once `log` holds all it printed."""
        code = end(self.process)
        self._reader.join(timeout=5)  # the last lines, for whoever reads `log` next
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        return code


def slack_environment(slack_url: str, database_url: str, **settings: str) -> dict[str, str]:
    """bot_environment for the bot on Slack over HTTP: the fake Slack Web API at `slack_url`,
    requests signed with the tests' SIGNING_SECRET, outreach channel C0OUTREACH, loopback on
    a free port (env["PORT"]); `settings` add to or override those."""
    from tests.support.slack_requests import SIGNING_SECRET

    return bot_environment(
        **{
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack_url,
            "OUTREACH_CHANNEL": "C0OUTREACH",
            "HOST": "127.0.0.1",
            "PORT": str(free_port()),
            "DATABASE_URL": database_url,
            **settings,
        }
    )


def start_slack_bot(slack_url: str, database_url: str, policy: Path, **settings: str) -> BotProcess:
    """`python bot.py` on Slack (slack_environment) with an escalation policy, the digest
    channel C0DIGEST, logging at INFO; `settings` add to or override those. Returned once it
    listens."""
    environment = slack_environment(
        slack_url,
        database_url,
        **{
            "DIGEST_CHANNEL": "C0DIGEST",
            "ESCALATION_POLICY": str(policy),
            "LOG_LEVEL": "INFO",
            **settings,
        },
    )
    bot = BotProcess(env=environment)
    try:
        bot.wait_for("Uvicorn running", timeout=60)
    except AssertionError:
        bot.stop()  # and its pipes closed: a failed start leaves nothing running
        raise
    return bot
