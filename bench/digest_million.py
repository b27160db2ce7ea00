"""How long the daily digest takes over 1,000,000 stored reviews, on SQLite and on PostgreSQL.

    .venv/bin/python bench/digest_million.py [--reviews N] [--only sqlite|postgres]

Generates the reviews (two years of them, one every 63 seconds, ending at the digest) and their
audit events with INSERT ... SELECT in the database itself, into a scratch SQLite file and a
scratch PostgreSQL database (RAPIDREVIEW_BENCH_PG, default the local test server), then times
build_digest() (figures, trend, open list and chart) and the month's export. Not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reviews.digest import build_digest, collect, window_for  # noqa: E402
from reviews.export import write_export  # noqa: E402
from reviews.policy import load_policy  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.support.builders import SHIPPED_POLICY, SLACK_ROUTE, make_services  # noqa: E402
from tests.support.clock import FrozenClock  # noqa: E402

PG_ADMIN = os.environ.get("RAPIDREVIEW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DAY = date(2026, 12, 2)
SPACING = 63  # seconds between reviews: a million of them is about two years
RUNS = 3


def numbers(dialect: str, count: int) -> str:
    if dialect == "postgresql":
        return f"SELECT generate_series(1, {count}) AS n"
    recursive = "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {})"
    return recursive.format(int(count)) + " SELECT n FROM g"  # noqa: S608 - an int only


def moment(dialect: str, base: datetime, seconds: str) -> str:
    """SQL for `base` + `seconds` (an SQL expression), stored as each database stores times."""
    if dialect == "postgresql":
        return f"(TIMESTAMPTZ '{base.isoformat()}' + make_interval(secs => {seconds}))"
    stamp = base.strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"(strftime('%Y-%m-%d %H:%M:%S', '{stamp}', '+' || ({seconds}) || ' seconds') || '.000000')"
    )


def fill(db: Database, count: int, end: datetime) -> None:
    """Reviews 1..count, mostly closed, the last 50 open, 1 in 100 cancelled; their events."""
    dialect = db.engine.dialect.name
    base = end - timedelta(seconds=SPACING * count)
    policy = load_policy(SHIPPED_POLICY)
    ladders = [policy.ladder_for(score).to_json().replace("'", "''") for score in (8, 6, None)]

    def at(offset: str) -> str:
        return moment(dialect, base, f"n * {SPACING} + {offset}")

    ack, attend, close = "(n * 37) % 900", "(n * 37) % 900 + (n * 53) % 3600", None
    close = f"{attend} + 1800"
    is_open, cancelled = f"n > {count - 50}", "n % 100 = 0"
    pick = "CASE n % 3 WHEN 0 THEN '{}' WHEN 1 THEN '{}' ELSE '{}' END".format
    reviews = f"""
        INSERT INTO review (id, state, caller, concern_kind, ward, bed, concern, urgency, policy,
            raised_platform, raised_by, raised_by_name, raised_at, acknowledged_at, attending_at,
            closed_at, outcome, outcome_detail, cancelled_at, escalation_level, escalation_repeat,
            attend_reminders)
        SELECT n,
            CASE WHEN {cancelled} THEN 'cancelled' WHEN {is_open} THEN 'acknowledged'
                 ELSE 'closed' END,
            {pick("staff", "patient", "family")},
            CASE (n / 3) % 3 WHEN 0 THEN 'deterioration' WHEN 1 THEN 'clinical'
                 ELSE 'communication' END,
            'Ward ' || (n % 40), '1', 'generated', {pick("emergency", "urgent", "standard")},
            {pick(*ladders)}, 'bench', 'U0BENCH', 'Bench', {at("0")},
            CASE WHEN {cancelled} THEN NULL ELSE {at(ack)} END,
            CASE WHEN {cancelled} OR {is_open} THEN NULL ELSE {at(attend)} END,
            CASE WHEN {cancelled} OR {is_open} THEN NULL ELSE {at(close)} END,
            CASE WHEN {cancelled} OR {is_open} THEN NULL ELSE
                CASE n % 5 WHEN 0 THEN 'no_change' WHEN 1 THEN 'change_in_care'
                     WHEN 2 THEN 'transfer' WHEN 3 THEN 'redirected' ELSE 'not_reached' END END,
            CASE WHEN n % 5 = 2 THEN 'ICU' END,
            CASE WHEN {cancelled} THEN {at("120")} END,
            0, 0, 0
        FROM ({numbers(dialect, count)}) AS g"""  # noqa: S608 - constants and ints only
    events = f"""
        INSERT INTO review_event (review_id, at, kind, actor, platform, detail)
        SELECT n, {at("0")}, 'raised', 'Bench', 'bench', '{{}}' FROM ({numbers(dialect, count)}) g
        UNION ALL SELECT n, {at("0")}, 'escalated', 'system', 'system', '{{"level": 0}}'
            FROM ({numbers(dialect, count)}) g
        UNION ALL SELECT n, {at("300")}, 'escalated', 'system', 'system', '{{"level": 1}}'
            FROM ({numbers(dialect, count)}) g WHERE {ack} > 300 OR {cancelled}
        UNION ALL SELECT n, {at("300")}, 'cover_gap', 'system', 'system', '{{"level": 1}}'
            FROM ({numbers(dialect, count)}) g WHERE n % 50 = 0
        UNION ALL SELECT n, {at("5")}, 'delivery_failed', 'system', 'system', '{{}}'
            FROM ({numbers(dialect, count)}) g WHERE n % 200 = 0"""  # noqa: S608 - as above
    with db.engine.begin() as connection:
        connection.execute(text(reviews))
        connection.execute(text(events))
    with db.engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()


def timed(label: str, action: object) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    best, middle = min(times), statistics.median(times)
    print(f"  {label}: best {best * 1000:.0f} ms, median {middle * 1000:.0f} ms of {RUNS}")
    return middle


def filled(name: str, url: str, count: int) -> tuple[Database, datetime]:
    """A migrated database at `url` holding `count` generated reviews and their events, and
    the moment the last one ends."""
    db = Database(url)
    upgrade(db.engine)
    end = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    started = time.perf_counter()
    fill(db, count, end)
    print(
        f"{name}: generated {count:,} reviews and their events in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return db, end


def bench(name: str, url: str, count: int) -> None:
    db, end = filled(name, url, count)
    services = make_services(db, FrozenClock(end), routes=(SLACK_ROUTE,))
    window = window_for(services, DAY)
    raised = collect(services, DAY).figures.raised
    print(f"  the digest day has {raised:,} requests ({window.hours:g} hours)")
    timed("figures only (SQL)", lambda: collect(services, DAY))
    timed(
        "build_digest (figures, trend, open list, chart)", lambda: build_digest(services, day=DAY)
    )
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "export.csv"
        timed(
            "export of November 2026",
            lambda: write_export(
                services=services, month="2026-11", out=out, with_identifiers=False
            ),
        )
    db.dispose()


def scratch_main(bench: Callable[[str, str, int], None], doc: str, scratch: str) -> None:
    """The command line the database benchmarks share: `bench` on a scratch SQLite file and
    a scratch PostgreSQL database named `scratch`_PID (dropped after), or on the one chosen."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    if args.only != "postgres":
        with tempfile.TemporaryDirectory() as folder:
            bench("SQLite", f"sqlite:///{folder}/bench.db", args.reviews)
    if args.only != "sqlite":
        name = f"{scratch}_{os.getpid()}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        try:
            base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            bench("PostgreSQL", f"{base}/{name}", args.reviews)
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> None:
    scratch_main(bench, __doc__ or "", "rr_bench_digest")


if __name__ == "__main__":
    main()
