"""Resident memory of the real bot: idle, after a burst, and its growth over a steady soak.

    .venv/bin/python bench/memory.py [--postgres] [--soak 600] [--rate 5]

Starts `python bot.py` (Slack over HTTP, a fake Slack Web API), reads its RSS from /proc once
it is idle, then after a burst of 300 requests, form submissions, and Acknowledge presses
over HTTP, then once a minute through a `--soak` seconds loop at `--rate` requests a second
(a submission, then its acknowledgement, then `/rapidreview open`, in turn). Prints each
reading and the growth from the start of the soak to its end; on PostgreSQL each reading adds
the bot's sender process (sender_process.py) to the bot. No asserts.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402

from bench.http_latency import ALEX, our_bot, serve_fake_slack  # noqa: E402
from handlers.slack.blocks import ACTION_PREFIX  # noqa: E402
from handlers.slack.forms import REQUEST_FORM  # noqa: E402
from storage.database import Database  # noqa: E402
from tests.support.builders import NURSE, on_rota  # noqa: E402
from tests.support.databases import drop_template, postgres_database, sqlite_database  # noqa: E402
from tests.support.process import sender_of  # noqa: E402
from tests.support.slack_requests import (  # noqa: E402
    button_click,
    request_form,
    slash_command,
    view_submission,
)

RAISED = re.compile(r"RR-(\d+) raised")


def rss_mb(pid: int) -> float:
    """The bot's resident memory, with its sender process's (on PostgreSQL) added."""
    return sum(_rss_mb(each) for each in (pid, sender_of(pid)) if each is not None)


def described(pid: int) -> str:
    sender = sender_of(pid)
    if sender is None:
        return f"{_rss_mb(pid):.1f} MB"
    return f"{rss_mb(pid):.1f} MB (the bot {_rss_mb(pid):.1f}, its sender {_rss_mb(sender):.1f})"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Load:
    """One request at a time on one keep-alive connection: submit, acknowledge, list."""

    def __init__(self, url: str):
        self.url = url
        self.session = requests.Session()
        self.numbers = itertools.count()
        self.raised: list[str] = []
        self.steps = itertools.cycle([self.submit, self.acknowledge, self.open_list])

    def post(self, body: str, headers: dict[str, str]) -> str:
        return self.session.post(self.url, data=body.encode(), headers=headers, timeout=30).text

    def submit(self) -> None:
        form = view_submission(
            REQUEST_FORM, request_form(), user_id=NURSE.user_id, view_id=f"VMEM{next(self.numbers)}"
        )
        told = RAISED.search(self.post(form.body, form.headers))
        if told:
            self.raised.append(told[1])

    def acknowledge(self) -> None:
        if self.raised:
            press = button_click(
                f"{ACTION_PREFIX}acknowledge", self.raised.pop(), user_id=ALEX, user_name="alex"
            )
            self.post(press.body, press.headers)

    def open_list(self) -> None:
        command = slash_command("open", trigger_id=f"t{next(self.numbers)}")
        self.post(command.body, command.headers)

    def step(self) -> None:
        next(self.steps)()


def run(url: str, soak: float, rate: float, slack_url: str) -> None:
    db = Database(url)
    on_rota(db, "outreach", "Alex Carter", ALEX, datetime.now(UTC) - timedelta(hours=1))
    with our_bot(url, slack_url) as (events, pid):
        time.sleep(5)
        print(f"idle: {described(pid)}")
        load = Load(events)
        for _ in range(300):
            load.step()
        time.sleep(5)
        print(f"after a burst of 300 requests: {described(pid)}")
        # The server closes a connection idle this long (uvicorn's keep-alive, 5 s): reusing
        # it raced that close and ended a run with "connection reset by peer".
        load.session.close()
        start, began = rss_mb(pid), time.monotonic()
        readings = [start]
        next_reading = began + 60
        for number in itertools.count():
            if time.monotonic() - began >= soak:
                break
            time.sleep(max(0.0, began + number / rate - time.monotonic()))
            load.step()
            if time.monotonic() >= next_reading:
                readings.append(rss_mb(pid))
                print(f"  soak {time.monotonic() - began:5.0f} s: {readings[-1]:.1f} MB")
                next_reading += 60
        end = rss_mb(pid)
        print(
            f"soak of {soak:.0f} s at {rate:g} requests/s ({number} requests): "
            f"{start:.1f} MB -> {end:.1f} MB, growth {end - start:+.1f} MB "
            f"(load {os.getloadavg()[0]:.1f})"
        )
    db.dispose()


def main() -> None:
    import multiprocessing

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--soak", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=5.0)
    args = parser.parse_args()
    ours, theirs = multiprocessing.Pipe()
    slack = multiprocessing.Process(target=serve_fake_slack, args=(theirs,), daemon=True)
    slack.start()
    slack_url = ours.recv()
    try:
        with ExitStack() as stack:
            if args.postgres:
                url = stack.enter_context(postgres_database())
                stack.callback(drop_template)
            else:
                url = stack.enter_context(
                    sqlite_database(stack.enter_context(tempfile.TemporaryDirectory()))
                )
            print(f"database: {'PostgreSQL' if args.postgres else 'SQLite'}")
            run(url, args.soak, args.rate, slack_url)
    finally:
        ours.send("stop")
        slack.join(timeout=10)


if __name__ == "__main__":
    main()
