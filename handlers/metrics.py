"""GET /metrics: Prometheus text.

Figures about requests and messages are counted in the database at scrape time (a custom
collector), so every replica serves the same numbers; only this process's own sweep timings
live in memory. A scrape while the database is down still answers, with
rapidreview_database_up 0 and the process's figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from handlers.one_at_a_time import OneAtATime, Waited
from reviews.context import Services
from storage.database import DatabaseUnavailable
from storage.metrics import Figures

# Seconds a scrape waits for the database's figures: a million stored requests took 6-7 s on a
# 2-core machine (docs/operations.md); a hung database is said as rapidreview_database_up 0.
DATABASE_WAIT = 20.0
# Prometheus says how long it waits for a scrape (its scrape_timeout, 10 s unless set): a scrape
# answers this much before that, or it is abandoned and rapidreview_database_up 0 never read.
TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
BEFORE_TIMEOUT = 1.0
LEAST_WAIT = 0.5
# A sweep takes milliseconds; seconds mean a lock or a slow database.
SWEEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class DatabaseFigures(Collector):
    """The figures that must agree across replicas, read from the database per scrape. Scrapes
    at once share one read, and one the database has not answered within `wait` seconds is
    answered with rapidreview_database_up 0 (a hung database: handlers/one_at_a_time.py)."""

    def __init__(self, services: Services, *, wait: float = DATABASE_WAIT):
        self.services = services
        self.wait = wait
        self._reading = OneAtATime(self._read, name="metrics")

    def _read(self) -> Figures:
        with self.services.db.reading() as uow:  # a scrape never waits for a writer
            return uow.metrics.figures()

    def collect(self) -> Iterator[Metric]:
        return self.collect_within(self.wait)

    def collect_within(self, wait: float) -> Iterator[Metric]:
        """The figures, or rapidreview_database_up 0 if the database has not answered within
        `wait` seconds (at most the collector's own)."""
        up = GaugeMetricFamily("rapidreview_database_up", "1 when the database answered")
        try:
            figures = self._reading.result(min(wait, self.wait))
        except (DatabaseUnavailable, Waited):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        raised = CounterMetricFamily(
            "rapidreview_requests_raised",
            "Rapid reviews raised, by who raised them and where",
            labels=["caller", "source"],
        )
        for (caller, source), count in sorted(figures.raised.items()):
            raised.add_metric([caller, source], count)
        yield raised
        yield GaugeMetricFamily(
            "rapidreview_open_requests",
            "Requests raised and not yet closed or cancelled",
            value=figures.open_requests,
        )
        buckets = [(str(bound), n) for bound, n in figures.acknowledged]
        yield HistogramMetricFamily(
            "rapidreview_time_to_acknowledge_seconds",
            "From raised to acknowledged, over every acknowledged request",
            buckets=[*buckets, ("+Inf", figures.acknowledged_count)],
            sum_value=figures.acknowledged_seconds,
        )
        escalations = CounterMetricFamily(
            "rapidreview_escalations",
            "Requests that reached each escalation level",
            labels=["level"],
        )
        for level, count in sorted(figures.escalations.items()):
            escalations.add_metric([str(level)], count)
        yield escalations
        outbox = figures.outbox
        yield GaugeMetricFamily(
            "rapidreview_outbox_pending",
            "Messages waiting to go (or being sent)",
            value=outbox.get("pending", 0) + outbox.get("sending", 0),
        )
        yield CounterMetricFamily(
            "rapidreview_outbox_failed",
            "Messages that could not be delivered",
            value=outbox.get("failed", 0),
        )
        yield from _texts(figures.texts)


def _texts(texts: dict[tuple[str, str], int]) -> Iterator[Metric]:
    """Texts and pages to on-call staff, by what carried them (notify: GOV.UK Notify, pager:
    the trust's gateway): sent, and failed after their retries."""
    for state, what in (("sent", "sent"), ("failed", "that could not be delivered")):
        family = CounterMetricFamily(
            f"rapidreview_texts_{state}",
            f"Texts and pages to on-call staff {what}",
            labels=["via"],
        )
        for via in ("notify", "pager"):
            family.add_metric([via], texts.get((via, state), 0))
        yield family


class ProcessFigures(Collector):
    """This process's own: when its sweep last completed; whether its sender process sends."""

    def __init__(self, services: Services):
        self.health = services.health

    def collect(self) -> Iterator[Metric]:
        last = self.health.last_completed("sweep")
        if last is not None:
            yield GaugeMetricFamily(
                "rapidreview_last_sweep_timestamp_seconds",
                "Unix time this process last completed an escalation sweep",
                value=last,
            )
        sender = self.health.described().get("sender_process")
        if sender is not None:
            yield GaugeMetricFamily(
                "rapidreview_sender_process_up",
                "1 while this bot's sender process runs and has finished a drain since it "
                "started (absent on SQLite, or with SENDER_PROCESS=off)",
                value=int(sender == "sending"),
            )


def metrics_route(services: Services) -> Route:
    """GET /metrics for `services`, with its own registry (never the global one)."""
    registry = CollectorRegistry()
    database = DatabaseFigures(services)
    registry.register(ProcessFigures(services))
    sweeps = Histogram(
        "rapidreview_sweep_duration_seconds",
        "How long each escalation sweep took in this process",
        buckets=SWEEP_BUCKETS,
        registry=registry,
    )
    services.health.on_completed.append(
        lambda job, seconds: sweeps.observe(seconds) if job == "sweep" else None
    )

    async def metrics(request: Request) -> Response:
        scrape = _Scrape(database, registry, _wait(request.headers.get(TIMEOUT_HEADER)))
        body = await run_in_threadpool(generate_latest, scrape)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, methods=["GET"])


def _wait(timeout: str | None) -> float:
    """How long this scrape waits for the database: DATABASE_WAIT, or less when the monitor
    gives up sooner (its header; one it sends that is not a number is not heeded)."""
    try:
        seconds = float(timeout or "")
    except ValueError:
        return DATABASE_WAIT
    if not math.isfinite(seconds):
        return DATABASE_WAIT
    return min(DATABASE_WAIT, max(seconds - BEFORE_TIMEOUT, LEAST_WAIT))


class _Scrape:
    """One scrape: the database's figures, waited for as long as this monitor waits, then the
    registry's own."""

    def __init__(self, database: DatabaseFigures, registry: CollectorRegistry, wait: float):
        self.database, self.registry, self.wait = database, registry, wait

    def collect(self) -> Iterator[Metric]:
        yield from self.database.collect_within(self.wait)
        yield from self.registry.collect()
