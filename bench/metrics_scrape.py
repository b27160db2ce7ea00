"""How long one GET /metrics scrape's database figures take over many stored reviews.

    .venv/bin/python bench/metrics_scrape.py [--reviews N] [--only sqlite|postgres]

Fills a scratch SQLite file and a scratch PostgreSQL database with the digest benchmark's
generated reviews and audit events (bench/digest_million.py), then times the collector's
queries (MetricsStore.figures) and a whole scrape (the text Prometheus reads). Not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from prometheus_client import CollectorRegistry, generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.digest_million import PG_ADMIN, fill, timed  # noqa: E402
from handlers.metrics import DatabaseFigures  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.support.builders import make_services  # noqa: E402
from tests.support.clock import FrozenClock  # noqa: E402


def bench(name: str, url: str, count: int) -> None:
    db = Database(url)
    upgrade(db.engine)
    end = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    started = time.perf_counter()
    fill(db, count, end)
    print(f"{name}: {count:,} reviews generated in {time.perf_counter() - started:.1f} s")
    services = make_services(db, FrozenClock(end))
    registry = CollectorRegistry()
    registry.register(DatabaseFigures(services))

    def figures() -> None:
        with db.reading() as uow:
            uow.metrics.figures()

    timed("database figures", figures)
    timed("whole scrape (text)", lambda: generate_latest(registry))
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    if args.only != "postgres":
        with tempfile.TemporaryDirectory() as folder:
            bench("SQLite", f"sqlite:///{folder}/bench.db", args.reviews)
    if args.only != "sqlite":
        name = f"rr_bench_metrics_{os.getpid()}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        try:
            base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            bench("PostgreSQL", f"{base}/{name}", args.reviews)
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
