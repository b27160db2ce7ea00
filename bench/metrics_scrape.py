"""What one GET /metrics costs over 1,000,000 stored reviews, on SQLite and on PostgreSQL: the
database figures are counted per scrape, and /metrics answers anyone who reaches the listener.

    .venv/bin/python bench/metrics_scrape.py [--reviews N] [--only sqlite|postgres]

Fills a scratch database as bench/digest_million.py does, then times the figures one scrape
reads (storage.metrics.MetricsStore.figures). Not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import psycopg
from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from digest_million import PG_ADMIN, fill, timed  # noqa: E402

from storage.database import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402


def bench(name: str, url: str, count: int) -> None:
    db = Database(url)
    upgrade(db.engine)
    # Filling a million rows takes longer than the bot's own statement timeout allows.
    filler = SimpleNamespace(engine=create_engine(url))
    fill(filler, count, datetime(2026, 12, 2, 8, 0, tzinfo=UTC))  # type: ignore[arg-type]
    filler.engine.dispose()
    print(f"{name}: {count:,} reviews")

    def scrape() -> None:
        with db.unit_of_work() as uow:
            uow.metrics.figures()

    seconds = timed("one scrape's database figures", scrape)
    print(f"  so one client asking /metrics back to back holds a core {seconds:.2f} s a scrape")
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
            admin.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        try:
            base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            bench("PostgreSQL", f"{base}/{name}", args.reviews)
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
