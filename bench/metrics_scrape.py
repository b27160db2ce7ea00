"""How long one GET /metrics scrape's database figures take over many stored reviews.

    .venv/bin/python bench/metrics_scrape.py [--reviews N] [--only sqlite|postgres]

Fills a scratch SQLite file and a scratch PostgreSQL database with the digest benchmark's
generated reviews and audit events (bench/digest_million.py), then times the collector's
queries (MetricsStore.figures) and a whole scrape (the text Prometheus reads). Not a test.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.digest_million import filled, scratch_main, timed  # noqa: E402
from handlers.metrics import DatabaseFigures  # noqa: E402
from tests.support.builders import make_services  # noqa: E402
from tests.support.clock import FrozenClock  # noqa: E402


def bench(name: str, url: str, count: int) -> None:
    db, end = filled(name, url, count)
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
    scratch_main(bench, __doc__ or "", "rr_bench_metrics")


if __name__ == "__main__":
    main()
