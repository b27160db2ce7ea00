"""GET /metrics: Prometheus text; figures about requests come from the database, so every
replica serves the same ones."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from handlers.http import make_http_app
from handlers.metrics import DatabaseFigures, metrics_route
from reviews import escalation, service
from reviews.outbox import DeliveryError, drain
from storage.database import Database
from tests.support.builders import (
    NURSE,
    OUTREACH,
    RecordingSender,
    make_services,
    on_rota,
    request,
)
from tests.support.http import serve
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually


def scrape(services) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of GET /metrics: (name, sorted labels) -> value."""
    with serve(make_http_app(services.db, [metrics_route(services)])) as url:
        answer = requests.get(f"{url}/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def test_the_figures_come_from_the_database(db, clock):
    on_rota(db, "outreach", "Alex Carter", OUTREACH.user_id, clock.now() - timedelta(hours=1))
    services = make_services(db, clock)
    first = service.raise_review(services=services, request=request(), by=NURSE).review
    service.raise_review(services=services, request=request(caller="staff"), by=NURSE)
    clock.advance(90)
    service.acknowledge(services=services, review_id=first.id, by=OUTREACH)
    clock.advance(minutes=6)
    escalation.sweep(services)  # the second request climbs to level 1
    refusing = RecordingSender(
        failures=[DeliveryError("channel_not_found", permanent=True)], failing=OUTREACH.user_id
    )
    drain(services, {"slack": refusing})

    figures = scrape(services)
    assert figures[("rapidreview_database_up", ())] == 1
    assert (
        figures[("rapidreview_requests_raised_total", (("caller", "family"), ("source", "slack")))]
        == 1
    )
    assert (
        figures[("rapidreview_requests_raised_total", (("caller", "staff"), ("source", "slack")))]
        == 1
    )
    assert figures[("rapidreview_open_requests", ())] == 2
    hist = "rapidreview_time_to_acknowledge_seconds"
    assert figures[(f"{hist}_bucket", (("le", "60.0"),))] == 0
    assert figures[(f"{hist}_bucket", (("le", "120.0"),))] == 1
    assert figures[(f"{hist}_bucket", (("le", "+Inf"),))] == 1
    assert figures[(f"{hist}_count", ())] == 1
    assert round(figures[(f"{hist}_sum", ())]) == 90
    assert figures[("rapidreview_escalations_total", (("level", "0"),))] == 2
    assert figures[("rapidreview_escalations_total", (("level", "1"),))] == 1
    assert figures[("rapidreview_outbox_failed_total", ())] == 1
    assert figures[("rapidreview_outbox_pending", ())] == 0

    # A second replica on the same database says the same.
    replica = Database(db.url)
    try:
        again = scrape(make_services(replica, clock))
    finally:
        replica.dispose()

    def from_database(samples):  # the sweep's figures are each process's own
        return {key: value for key, value in samples.items() if "sweep" not in key[0]}

    assert from_database(again) == from_database(figures)


def test_acknowledged_in_five_minutes_to_the_second_is_in_the_five_minute_bucket(db, clock):
    on_rota(db, "outreach", "Alex Carter", OUTREACH.user_id, clock.now() - timedelta(hours=1))
    services = make_services(db, clock)
    for _ in range(12):  # at different moments: SQLite's error depended on the time of day
        clock.advance(37)
        review = service.raise_review(services=services, request=request(), by=NURSE).review
        clock.advance(minutes=5)
        service.acknowledge(services=services, review_id=review.id, by=OUTREACH)
    hist = "rapidreview_time_to_acknowledge_seconds"
    figures = scrape(services)
    assert figures[(f"{hist}_bucket", (("le", "300.0"),))] == 12
    assert figures[(f"{hist}_sum", ())] == 12 * 300


def test_sweep_timings_are_the_process_own(db, clock):
    services = make_services(db, clock)
    route = metrics_route(services)
    services.health.started("sweep")
    services.health.completed("sweep")
    with serve(make_http_app(services.db, [route])) as url:
        text = requests.get(f"{url}/metrics", timeout=10).text
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["rapidreview_sweep_duration_seconds_count"] == 1
    assert samples["rapidreview_last_sweep_timestamp_seconds"] > 1_700_000_000


def test_a_scrape_while_the_database_is_down_still_answers(clock):
    unreachable = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    figures = scrape(make_services(unreachable, clock))
    assert figures[("rapidreview_database_up", ())] == 0
    assert ("rapidreview_open_requests", ()) not in figures


def test_scrapes_while_the_database_hangs_share_one_read_and_say_it_is_down(postgres_url, clock):
    """A server that takes connections and never answers fires no timeout of the driver: each
    scrape held a server thread and a connection for as long as it hung, and a monitor
    scraping every few seconds would in time hold every thread (and /healthz with them)."""
    with TcpProxy("127.0.0.1", 5432) as proxy:
        db = Database(postgres_url.replace(":5432/", f":{proxy.port}/"))
        services = make_services(db, clock)
        registry = CollectorRegistry()
        registry.register(DatabaseFigures(services, wait=1.0))
        monitors = ThreadPoolExecutor(6)
        try:
            assert b"rapidreview_database_up 1.0" in generate_latest(registry)
            proxy.freeze()
            started = time.monotonic()
            scrapes = monitors.map(lambda _: generate_latest(registry), range(6), timeout=10)
            said = list(scrapes)
            took = time.monotonic() - started
            assert all(b"rapidreview_database_up 0.0" in text for text in said)
            assert took < 3, took  # answered once the wait is up, not when the database is
            hung = [t for t in threading.enumerate() if t.name == "metrics"]
            assert len(hung) == 1  # one read waits on the database, not one a scrape

            proxy.thaw()
            eventually(lambda: b"rapidreview_database_up 1.0" in generate_latest(registry), "up")
        finally:
            proxy.thaw()  # what still waits on the database ends
            monitors.shutdown()
            db.dispose()


def test_a_scrape_of_a_hung_database_answers_within_the_monitors_own_timeout(postgres_url, clock):
    """Prometheus gives up on a scrape after its scrape_timeout (10 s unless set), and says how
    long in X-Prometheus-Scrape-Timeout-Seconds. Waiting 20 s for a hung database, the scrape
    was abandoned: rapidreview_database_up 0 was never read, so an alert on it never fired."""
    with TcpProxy("127.0.0.1", 5432) as proxy:
        db = Database(postgres_url.replace(":5432/", f":{proxy.port}/"))
        services = make_services(db, clock)
        try:
            with serve(make_http_app(db, [metrics_route(services)])) as url:
                assert (
                    "rapidreview_database_up 1.0" in requests.get(f"{url}/metrics", timeout=10).text
                )
                proxy.freeze()
                started = time.monotonic()
                answer = requests.get(
                    f"{url}/metrics",
                    headers={"X-Prometheus-Scrape-Timeout-Seconds": "3"},
                    timeout=3,
                )
                assert time.monotonic() - started < 3
                assert "rapidreview_database_up 0.0" in answer.text
        finally:
            proxy.thaw()  # what still waits on the database ends
            db.dispose()
