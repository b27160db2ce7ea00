"""Escalation lateness through the real bot: due time -> message arriving at a fake Slack.

    .venv/bin/python bench/escalation_lateness.py [--requests 200] [--postgres] [--replicas 1]
                                                  [--slack-latency MS]

Starts `python bot.py` (Slack over HTTP, a fake Slack Web API on a loopback port), raises
`--requests` reviews through reviews.service over ~10 seconds so that all are open at once,
and lets each climb a ladder in seconds (0s, 5s, 10s, 15s, then every 5s) for `--run` seconds.
Every escalation ping's lateness is its arrival at the fake Slack minus the moment its level
was due (raised_at + after + repeat x repeat_every). Prints p50/p90/p99/max. No asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reviews import service  # noqa: E402
from reviews.clock import SystemClock  # noqa: E402
from reviews.context import Services  # noqa: E402
from reviews.policy import load_policy  # noqa: E402
from storage.database import Database  # noqa: E402
from tests.support.builders import NURSE, make_services, on_rota, request  # noqa: E402
from tests.support.databases import (  # noqa: E402
    drop_template,
    postgres_database,
    sqlite_database,
)
from tests.support.process import BotProcess, start_slack_bot  # noqa: E402
from tests.support.timed_slack import TimedSlack  # noqa: E402

POLICY = """\
[[levels]]
after = "0s"
notify = ["outreach"]
[[levels]]
after = "5s"
notify = ["outreach", "outreach-backup"]
channel = true
[[levels]]
after = "10s"
notify = ["icu-registrar"]
[[levels]]
after = "15s"
notify = ["site-manager"]
repeat_every = "5s"
[urgency.standard]
news2_at_least = 0
attend_within = "1h"
"""
AFTER = {0: 0.0, 1: 5.0, 2: 10.0, 3: 15.0}
REPEAT_EVERY = 5.0


def lateness(fake: TimedSlack, raised: dict[str, float]) -> dict[str, list[float]]:
    """Seconds late per ping, split into level 0 (at raise) and the escalations after it."""
    late: dict[str, list[float]] = {"level 0 (at raise)": [], "levels 1-3 and repeats": []}
    for arrived, (_recipient, reference, level, repeat) in fake.pings():
        due = raised[reference] + AFTER[level] + repeat * REPEAT_EVERY
        late["level 0 (at raise)" if level == 0 else "levels 1-3 and repeats"].append(arrived - due)
    return late


def report(name: str, values: list[float]) -> None:
    if not values:
        print(f"{name}: no messages")
        return
    ordered = sorted(values)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]

    print(
        f"{name:24} n={len(ordered):5}  p50 {statistics.median(ordered):6.3f} s  "
        f"p90 {pct(0.90):6.3f} s  p99 {pct(0.99):6.3f} s  max {ordered[-1]:6.3f} s  "
        f"over 2 s: {sum(v > 2 for v in ordered)}"
    )


def run(
    url: str, requests: int, run_for: float, replicas: int, workdir: Path, latency: float
) -> None:
    policy_path = workdir / "escalation.toml"
    policy_path.write_text(POLICY)
    db = Database(url)
    start = datetime.now(UTC) - timedelta(hours=1)
    for role, user in (
        ("outreach", "U01ALEX"),
        ("outreach-backup", "U01SAM"),
        ("icu-registrar", "U01IRIS"),
        ("site-manager", "U01MO"),
    ):
        on_rota(db, role, role.title(), user, start, hours=4)
    ward = make_services(db, SystemClock(), policy=load_policy(policy_path))
    with TimedSlack(latency=latency) as fake:
        bots = [start_slack_bot(fake.url, url, policy_path) for _ in range(replicas)]
        raised = raise_over_ten_seconds(ward, requests, run_for, bots)
        print(
            f"{requests} open requests, {replicas} bot process(es), "
            f"{len(fake.called('chat.postMessage'))} chat.postMessage calls"
        )
        for name, values in lateness(fake, raised).items():
            report(name, values)
        report("  of which: due -> sweep", sweep_lateness(db, raised))
    db.dispose()


def raise_over_ten_seconds(
    ward: Services, requests: int, run_for: float, bots: list[BotProcess]
) -> dict[str, float]:
    """Raise `requests` reviews evenly over ten seconds, let the bots run `run_for` seconds
    more, then stop them; when each review was raised (Unix time), by its reference."""
    raised: dict[str, float] = {}
    began = time.monotonic()
    try:
        for number in range(requests):
            review = service.raise_review(services=ward, request=request(news2=""), by=NURSE).review
            raised[f"RR-{review.id:04d}"] = review.raised_at.timestamp()
            time.sleep(max(0.0, began + (number + 1) * 10 / requests - time.monotonic()))
        time.sleep(run_for)
    finally:
        for bot in bots:
            bot.process.terminate()
        for bot in bots:
            bot.process.wait(timeout=30)
    return raised


def sweep_lateness(db: Database, raised: dict[str, float]) -> list[float]:
    """Due -> the sweep that fired it (its audit event's time), for levels after level 0."""
    late = []
    with db.unit_of_work() as uow:
        for reference in raised:
            for event in uow.events.for_review(int(reference[3:])):
                detail = json.loads(event.detail)
                if event.kind == "escalated" and (detail["level"], detail["repeat"]) != (0, 0):
                    due = AFTER[detail["level"]] + detail["repeat"] * REPEAT_EVERY
                    late.append(event.at.timestamp() - raised[reference] - due)
    return late


def bench_main(
    run: Callable[[str, int, float, int, Path, float], None],
    doc: str,
    *,
    requests: int,
    seconds: float,
) -> None:
    """The command line both lateness benchmarks share: a fresh database, then `run`.
    `--slack-latency MS`: the fake Slack answers each call that late, as real Slack does."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--requests", type=int, default=requests)
    parser.add_argument("--run", type=float, default=seconds, help="seconds after the last raise")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument(
        "--slack-latency", type=float, default=0.0, metavar="MS", help="ms per Slack call"
    )
    args = parser.parse_args()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if args.postgres:
            url = stack.enter_context(postgres_database())
            stack.callback(drop_template)
        else:
            url = stack.enter_context(sqlite_database(str(workdir)))
        print(
            f"database: {'PostgreSQL' if args.postgres else 'SQLite'}; Slack answers after "
            f"{args.slack_latency:.0f} ms; load {os.getloadavg()[0]:.1f}"
        )
        run(url, args.requests, args.run, args.replicas, workdir, args.slack_latency / 1000)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")


def main() -> None:
    bench_main(run, __doc__ or "", requests=200, seconds=30.0)


if __name__ == "__main__":
    main()
