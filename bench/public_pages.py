"""The public pages' speed through the real bot, beside the Slack command's.

    .venv/bin/python bench/public_pages.py [--postgres] [--requests 200]

Starts `python bot.py` (Slack over HTTP against a fake Slack Web API, the shipped example
wards) and times, over real HTTP with 1 and then 20 concurrent clients (`--requests` each):
the ward page, the request form, a request submitted (each from its own address, so the
hourly limit never answers), and the signed `/rapidreview` command. Then how many submissions
a second one address gets through before the limiter answers, and how fast the limiter's 429s
come once it does. Prints p50/p99/max and requests/s. No asserts.
"""

from __future__ import annotations

import argparse
import itertools
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.databases import drop_template, postgres_database, sqlite_database  # noqa: E402
from tests.support.fake_slack import FakeSlack  # noqa: E402
from tests.support.process import BotProcess, slack_environment  # noqa: E402
from tests.support.public_pages import EXAMPLE_WARDS, FAMILY_FORM, PHONE  # noqa: E402
from tests.support.slack_requests import slash_command  # noqa: E402

Call = Callable[[requests.Session], requests.Response]
addresses = (f"10.{a}.{b}.{c}" for a, b, c in itertools.product(range(256), repeat=3))
address_lock = threading.Lock()


def next_address() -> str:
    with address_lock:
        return next(addresses)


@contextmanager
def running_bot(url: str) -> Iterator[str]:
    with FakeSlack() as fake:
        env = slack_environment(
            fake.url,
            url,
            PORT="0",
            WARDS_FILE=str(EXAMPLE_WARDS),
            CONCERN_PHONE=PHONE,
            LOG_LEVEL="INFO",
        )
        bot = BotProcess(env=env)
        try:
            line = bot.wait_for("Uvicorn running", timeout=60)
            yield re.search(r"(http://127\.0\.0\.1:\d+)", line)[1]  # type: ignore[index]
        finally:
            bot.stop()


def submit(base: str, address: str | None = None) -> Call:
    def call(session: requests.Session) -> requests.Response:
        form = session.get(f"{base}/concern/ward-7/review", timeout=30).text
        token = re.search(r'name="token" value="([^"]+)"', form)[1]  # type: ignore[index]
        started = time.perf_counter()
        answer = session.post(
            f"{base}/concern/ward-7/review",
            data={**FAMILY_FORM, "token": token},
            headers={"X-Forwarded-For": address or next_address()},
            timeout=30,
        )
        answer.elapsed_own = time.perf_counter() - started  # type: ignore[attr-defined]
        return answer

    return call


def command(base: str) -> Call:
    def call(session: requests.Session) -> requests.Response:
        signed = slash_command()
        return session.post(
            f"{base}/slack/events", data=signed.body, headers=signed.headers, timeout=30
        )

    return call


def timed(call: Call, count: int, clients: int) -> tuple[list[float], float, dict[int, int]]:
    """Seconds per request (a submit's own POST only), requests/s, and status counts."""
    local = threading.local()
    statuses: dict[int, int] = {}

    def one(_: int) -> float:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        started = time.perf_counter()
        answer = call(session)
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        return getattr(answer, "elapsed_own", time.perf_counter() - started)

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        seconds = list(pool.map(one, range(count)))
    return seconds, count / (time.perf_counter() - began), statuses


def line(name: str, clients: int, result: tuple[list[float], float, dict[int, int]]) -> None:
    seconds, rate, statuses = result
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(
        f"{name:<26} {clients:>3} clients  p50 {statistics.median(ms):6.1f} ms  p99 {p99:6.1f} ms"
        f"  max {ms[-1]:6.1f} ms  {rate:6.1f} req/s  {dict(sorted(statuses.items()))}"
    )


def page(base: str, path: str) -> Call:
    return lambda session: session.get(base + path, timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.postgres:
            url = stack.enter_context(postgres_database())
            stack.callback(drop_template)
        else:
            url = stack.enter_context(sqlite_database(stack.enter_context(TemporaryDirectory())))
        base = stack.enter_context(running_bot(url))
        print(f"{'PostgreSQL' if args.postgres else 'SQLite'}, {args.requests} requests a line")
        for clients in (1, 20):
            line("ward page", clients, timed(page(base, "/concern/ward-7"), args.requests, clients))
            form = page(base, "/concern/ward-7/review")
            line("request form", clients, timed(form, args.requests, clients))
            line("request submitted", clients, timed(submit(base), args.requests, clients))
            line("Slack /rapidreview", clients, timed(command(base), args.requests, clients))
        one_address = submit(base, address="192.0.2.1")
        began = time.perf_counter()
        accepted = timed(one_address, 5, 1)
        print(f"one address: 5 recorded in {time.perf_counter() - began:.2f} s, then:")
        line("  refused (429)", 20, timed(one_address, args.requests, 20))
        del accepted


if __name__ == "__main__":
    main()
