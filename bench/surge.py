"""A surge: requests flooding in across three replicas while Slack limits each channel.

    .venv/bin/python bench/surge.py [--requests 500] [--over 60] [--kill] [--wait 900]
                                    [--slack-latency 150]

Three `python bot.py` replicas on one PostgreSQL; `--requests` signed form submissions over
`--over` seconds, spread across them; a fake Slack that accepts about one post a second to
each channel and answers 429 with Retry-After beyond that. With `--kill`, one replica is
SIGKILLed halfway. `--slack-latency MS` makes the fake take that long over every call, as real
Slack does (100-300 ms; the fake alone answers in about a millisecond). Prints what the nurses
were told, each request's first direct message lateness (arrival at Slack minus the moment the
request was stored), cards posted, and anything sent twice. tests/test_surge.py asserts the
invariants on a smaller surge.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import speed  # noqa: E402
from tests.support.databases import drop_template, postgres_database  # noqa: E402
from tests.support.surge import Surge, run_surge  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def report(surge: Surge) -> None:
    late = list(surge.first_dm.values())
    print(f"requests raised in {surge.raise_seconds:.1f} s; nurses told: {dict(surge.answers)}")
    print(
        f"stored: {len(surge.stored)}; told raised but not stored: "
        f"{len(surge.told_raised - set(surge.stored))}"
    )
    if late:
        print(
            f"first direct message, seconds after the request was stored: p50 "
            f"{percentile(late, 0.5):.2f}  p99 {percentile(late, 0.99):.2f}  max {max(late):.2f}"
            f"  over 5 s: {sum(v > 5 for v in late)}"
        )
    print(f"requests without a direct message: {len(set(surge.stored) - set(surge.first_dm))}")
    print(
        f"cards posted: {len(surge.card_copies)} of {len(surge.stored)}"
        + (
            f", the last {surge.cards_done_after:.0f} s after the first request"
            if surge.cards_done_after
            else ""
        )
        + f"; 429s from Slack: {surge.rate_limited}"
    )
    print(f"sent twice: {surge.sent_twice}; messages under lease at the kill: {surge.held_at_kill}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--over", type=float, default=60.0)
    parser.add_argument("--kill", action="store_true")
    parser.add_argument("--wait", type=float, default=900.0, help="seconds to wait for cards")
    parser.add_argument(
        "--slack-latency", type=float, default=0.0, metavar="MS", help="ms per Slack call"
    )
    args = parser.parse_args()
    print(
        f"{speed()}, load {os.getloadavg()[0]:.1f}; PostgreSQL, 3 replicas; "
        f"Slack answers after {args.slack_latency:.0f} ms"
    )
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(postgres_database())
        stack.callback(drop_template)
        report(
            run_surge(
                url,
                workdir,
                count=args.requests,
                over=args.over,
                kill=args.kill,
                wait=args.wait,
                latency=args.slack_latency / 1000,
            )
        )


if __name__ == "__main__":
    main()
