"""How fast the outbox drains a backlog, and what each claim costs, on SQLite and PostgreSQL.

    .venv/bin/python bench/drain_backlog.py [--requests 1000]

Raises `requests` requests (each queues a card to the outreach channel and a direct message to
the one person on call, as a burst of submissions does), then drains the outbox to a sender
that answers at once, so the figures are the bot's and the database's own. Prints the time to
drain, and each claim's wall time and CPU (a claim reads the due rows and leases them).
Figures, no asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reviews import outbox, service  # noqa: E402
from reviews.clock import SystemClock  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.tables import Outbox  # noqa: E402
from tests.support.builders import (  # noqa: E402
    NURSE,
    RecordingSender,
    make_services,
    on_rota,
    request,
)
from tests.support.databases import (  # noqa: E402
    drop_template,
    postgres_database,
    postgres_unavailable,
    sqlite_database,
)


class TimedClaims:
    """Wraps the outbox's claim to time each one (wall and this thread's CPU)."""

    def __init__(self) -> None:
        self.claims, self.rows, self.wall, self.cpu = 0, 0, 0.0, 0.0
        self._claim = outbox._claim

    def __call__(self, *args: object, **kwargs: object) -> list[Outbox]:
        wall, cpu = time.perf_counter(), time.thread_time()
        rows = self._claim(*args, **kwargs)  # type: ignore[arg-type]
        self.wall += time.perf_counter() - wall
        self.cpu += time.thread_time() - cpu
        self.claims += 1
        self.rows += len(rows)
        return rows


def run(name: str, url: str, requests: int) -> None:
    db = Database(url)
    services = make_services(db, SystemClock())
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", datetime.now(UTC) - timedelta(hours=1))
    for number in range(requests):
        service.raise_review(
            services=services, request=request(), by=NURSE, submission_key=f"bench:{number}"
        )
    timed = TimedClaims()
    outbox._claim = timed
    sender = RecordingSender()
    began, cpu = time.perf_counter(), time.process_time()
    try:
        while outbox.drain(services, {"slack": sender}):
            pass
    finally:
        outbox._claim = timed._claim
    seconds = time.perf_counter() - began
    claims = max(timed.claims, 1)
    print(
        f"{name}: {timed.rows} messages queued by {requests} requests drained in {seconds:.1f} s"
        f" ({len(sender.sent)} sends, {time.process_time() - cpu:.1f} s of CPU);"
        f" {timed.claims} claims, each {1000 * timed.wall / claims:.1f} ms"
        f" ({1000 * timed.cpu / claims:.1f} ms of CPU)"
    )
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, sqlite_database(directory) as url:
        run("SQLite    ", url, args.requests)
    reason = postgres_unavailable()
    if reason:
        print(f"PostgreSQL: skipped ({reason})")
        return
    with postgres_database() as url:
        run("PostgreSQL", url, args.requests)
    drop_template()


if __name__ == "__main__":
    main()
