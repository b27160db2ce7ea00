"""The escalation sweep's cost per tick with 10,000 open requests, on SQLite and PostgreSQL.

    .venv/bin/python bench/sweep_cost.py [--open 10000] [--ticks 60]

Open requests are spread so that about `open / spread` fall due each second (the ladder's
later levels and repeats included); each tick moves a frozen clock one second and runs one
sweep, as bot.py does every second. Prints milliseconds per tick: when nothing is due, in
steady state, and for a burst of 200 requests falling due at once. Figures, no asserts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reviews import escalation  # noqa: E402
from reviews.context import Services  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.tables import Review  # noqa: E402
from tests.support.builders import make_services, on_rota  # noqa: E402
from tests.support.clock import FrozenClock  # noqa: E402
from tests.support.databases import (  # noqa: E402
    drop_template,
    postgres_database,
    postgres_unavailable,
    sqlite_database,
)

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ROLES = {
    "outreach": "U01ALEX",
    "outreach-backup": "U01SAM",
    "icu-registrar": "U01IRIS",
    "site-manager": "U01MO",
}


def populate(services: Services, open_requests: int, spread: timedelta) -> None:
    """`open_requests` raised reviews whose next level falls due evenly over `spread`."""
    for role, user in ROLES.items():
        on_rota(services.db, role, role.title(), user, START - timedelta(hours=1), hours=48)
    ladder = services.policy.ladder_for(None)
    step = spread / open_requests
    with services.db.unit_of_work() as uow:
        for number in range(open_requests):
            due = START + step * number
            uow.session.add(
                Review(
                    state="raised",
                    caller="staff",
                    concern_kind="clinical",
                    ward=f"Ward {number % 30}",
                    bed=str(number % 20),
                    concern="Bench",
                    urgency=ladder.urgency,
                    policy=ladder.to_json(),
                    raised_platform="slack",
                    raised_by="U0NURSE",
                    raised_at=due - timedelta(minutes=5),
                    escalation_level=1,
                    next_escalation_at=due,
                )
            )


def time_ticks(services: Services, clock: FrozenClock, ticks: int) -> tuple[list[float], int]:
    timings, moved = [], 0
    for _ in range(ticks):
        clock.advance(1)
        began = time.perf_counter()
        moved += escalation.sweep(services)
        timings.append((time.perf_counter() - began) * 1000)
    return timings, moved


def burst(services: Services, clock: FrozenClock, size: int) -> float:
    """Make `size` more requests due now; the milliseconds of the one sweep that fires them."""
    with services.db.unit_of_work() as uow:
        due = uow.reviews.open_reviews(limit=size)
        for review in due:
            review.next_escalation_at = clock.now()
            uow.session.add(review)
    began = time.perf_counter()
    escalation.sweep(services)
    return (time.perf_counter() - began) * 1000


def summary(timings: list[float]) -> str:
    ordered = sorted(timings)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"median {statistics.median(ordered):7.1f} ms  p99 {p99:7.1f} ms  max {ordered[-1]:7.1f} ms"
    )


def run(name: str, url: str, open_requests: int, ticks: int) -> None:
    db = Database(url)
    clock = FrozenClock(START - timedelta(seconds=ticks + 10))
    services = make_services(db, clock)
    spread = timedelta(minutes=10)
    began = time.perf_counter()
    populate(services, open_requests, spread)
    print(f"{name}: {open_requests} open requests written in {time.perf_counter() - began:.1f} s")
    idle, _ = time_ticks(services, clock, 10)
    print(f"{name}: idle tick (nothing due)          {summary(idle)}")
    clock.at = START
    steady, moved = time_ticks(services, clock, ticks)
    print(f"{name}: steady tick (~{moved / ticks:.0f} due a second)    {summary(steady)}")
    print(f"{name}: burst of 200 due at once        {burst(services, clock, 200):7.1f} ms")
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, sqlite_database(directory) as url:
        run("SQLite    ", url, args.open, args.ticks)
    reason = postgres_unavailable()
    if reason:
        print(f"PostgreSQL: skipped ({reason})")
        return
    with postgres_database() as url:
        run("PostgreSQL", url, args.open, args.ticks)
    drop_template()


if __name__ == "__main__":
    main()
