"""Replicas on one PostgreSQL keep the database's time, not each machine's (issue 11, 10).

A replica whose machine clock ran fast used to fire escalation levels early and take messages
another replica still held under lease (a double ping). Two replicas here share one database;
one's machine clock is 90 seconds fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import build
from reviews import escalation, service
from reviews.clock import DatabaseClock, SystemClock
from reviews.context import Services
from reviews.outbox import LEASE, drain
from reviews.policy import load_policy
from settings import Settings
from storage.database import Database
from tests.support.builders import NURSE, RecordingSender, make_services, on_rota, request

pytestmark = pytest.mark.postgres

POLICY = """\
[[levels]]
after = "0s"
notify = ["outreach"]
[[levels]]
after = "30s"
notify = ["outreach-backup"]
repeat_every = "24h"  # beyond the test: the ladder must repeat
[urgency.standard]
news2_at_least = 0
attend_within = "1h"
"""


class FastClock:
    """A machine whose clock runs 90 seconds ahead."""

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=90)


@pytest.fixture
def replicas(postgres_url: str, tmp_path: Path) -> Iterator[tuple[Services, Services]]:
    policy = tmp_path / "escalation.toml"
    policy.write_text(POLICY)
    first, fast = Database(postgres_url), Database(postgres_url)
    start = datetime.now(UTC) - timedelta(hours=1)
    on_rota(first, "outreach", "Alex Carter", "U01ALEX", start)
    on_rota(first, "outreach-backup", "Sam Patel", "U01SAM", start)

    def replica(db: Database, machine: object) -> Services:
        clock = DatabaseClock(db, machine=machine)  # type: ignore[arg-type]
        return make_services(db, clock, policy=load_policy(policy))

    yield replica(first, SystemClock()), replica(fast, FastClock())
    first.dispose()
    fast.dispose()


def test_a_replica_with_a_fast_clock_keeps_the_database_time(
    replicas: tuple[Services, Services],
) -> None:
    normal, fast = replicas
    assert abs(fast.clock.now() - normal.clock.now()) < timedelta(seconds=2)


def test_a_replica_with_a_fast_clock_fires_no_level_early(
    replicas: tuple[Services, Services],
) -> None:
    normal, fast = replicas
    service.raise_review(services=normal, request=request(news2=""), by=NURSE)
    escalation.sweep(fast)  # level 1 falls due 30 s after the raise: not yet
    sent = RecordingSender()
    drain(fast, {"slack": sent})
    assert sent.to("U01SAM") == []
    assert len(sent.to("U01ALEX")) == 1  # level 0, due at the raise


def test_a_replica_with_a_fast_clock_takes_no_message_another_holds(
    replicas: tuple[Services, Services],
) -> None:
    normal, fast = replicas
    service.raise_review(services=normal, request=request(news2=""), by=NURSE)
    with normal.db.unit_of_work() as uow:  # the first replica is mid-send on everything
        held = uow.outbox.claim(now=normal.clock.now(), lease=LEASE, limit=50, platforms=["slack"])
    assert held
    sent = RecordingSender()
    drain(fast, {"slack": sent})
    assert sent.sent == []


def test_the_bot_on_postgresql_keeps_the_database_time(postgres_url: str) -> None:
    bot = build(Settings(database_url=postgres_url))
    try:
        assert isinstance(bot.services.clock, DatabaseClock)
    finally:
        bot.services.db.dispose()
