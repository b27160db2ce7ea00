"""GET /healthz: 200 with figures when the database answers, 503 when it does not."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg
import pytest
import requests

from bot import build, start_scheduler
from handlers.http import make_http_app
from reviews.channels import check_channels
from reviews.health import Health
from reviews.outbox import drain
from reviews.service import raise_review
from settings import Settings
from storage.database import Database
from storage.migrate import upgrade
from tests.support.builders import NURSE, on_rota, request
from tests.support.clock import FrozenClock
from tests.support.databases import postgres_database, postgres_unavailable
from tests.support.fake_slack import FakeSlack
from tests.support.http import serve


def test_healthy_when_the_database_answers(db):
    with serve(make_http_app(db, [])) as url:
        response = requests.get(f"{url}/healthz", timeout=10)
    assert response.status_code == 200
    body = response.json()
    # A SQLite database's free disk (a server's disk is the server's to watch).
    free = body.pop("disk_free_bytes", None)
    assert (free is not None and free > 0) if db.is_sqlite else free is None
    assert body == {
        "status": "ok",
        "database": "ok",
        "problems": [],
        "warnings": [],
        "open_requests": 0,
        "outbox_pending": 0,
        "outbox_failed": 0,
    }


def test_unavailable_when_the_database_does_not_answer(tmp_path):
    unreachable = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with serve(make_http_app(unreachable, [])) as url:
        response = requests.get(f"{url}/healthz", timeout=20)
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
    assert response.json()["problems"] == ["the database does not answer"]


def wait_for_health(url: str, status: int, naming: str = "", timeout: float = 20) -> dict:
    """/healthz's body once it answers `status` with a problem starting `naming`."""
    deadline = time.monotonic() + timeout
    while True:
        answer = requests.get(f"{url}/healthz", timeout=20)
        problems = answer.json()["problems"]
        if answer.status_code == status and (
            not naming or any(p.startswith(naming) for p in problems)
        ):
            return answer.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"healthz stayed {answer.status_code}: {answer.json()}")
        time.sleep(0.1)


@pytest.mark.postgres
def test_a_hung_sweep_makes_healthz_503_naming_it(
    clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    if reason := postgres_unavailable():
        pytest.skip(reason)
    with postgres_database() as database_url, FakeSlack() as fake:
        settings = Settings(
            database_url=database_url,
            slack_bot_token="xoxb-test",
            slack_signing_secret="test-secret",
            slack_api_url=fake.url,
            outreach_channel="C0OUTREACH",
        )
        bot = build(settings, clock=clock, health=Health(stale_after=1.0))
        on_rota(bot.services.db, "outreach", "Alex Carter", "U01ALEX", clock.now())
        raise_review(services=bot.services, request=request(), by=NURSE)
        start_scheduler(bot)
        try:
            with serve(bot.http_app) as url:
                assert wait_for_health(url, 200)["problems"] == []
                # A runaway query elsewhere holds the outbox: the sweep's next level cannot
                # be queued, and the drain cannot claim.
                with psycopg.connect(database_url.replace("+psycopg", "")) as other:
                    other.execute("LOCK TABLE outbox IN EXCLUSIVE MODE")
                    clock.advance(minutes=6)  # the second level falls due
                    stuck = wait_for_health(url, 503, naming="sweep has not completed for")
                    assert stuck["database"] == "ok"
                    time.sleep(2)  # the scheduler skips the sweep's ticks meanwhile
                assert wait_for_health(url, 200)["problems"] == []
            # Logged once per hung job, not once per skipped tick.
            hung = [r.message for r in caplog.records if "has been running for" in r.message]
            assert len([m for m in hung if m.startswith("sweep")]) == 1
        finally:
            bot.scheduler.shutdown(wait=True)
            bot.services.db.dispose()


def test_messages_are_delayed_only_while_every_platform_is_down() -> None:
    """A trust on Slack and Teams still reaches its team while one of them is down: the public
    page asks a family to phone as well only when neither can be reached."""
    health = Health()
    both = ("slack", "teams")
    assert not health.all_down(both) and not health.all_down(())
    health.unreachable("slack", "network: URLError")
    assert health.all_down(["slack"]) and not health.all_down(both)
    health.credentials_refused("teams", "token expired", retry_at=datetime.now(UTC))
    assert health.all_down(both)
    health.platform_ok("teams")
    assert not health.all_down(both)


def test_only_a_message_going_ends_an_outage_a_message_found() -> None:
    """A platform's check can answer while its messages fail (a connector taking GETs and
    failing posts): an outage a failed message found lasts until a message goes."""
    health = Health()
    health.unreachable("teams", "a message failed: Bot Connector 503", by_delivery=True)
    health.unreachable("teams", "Bot Connector 503")  # the check failed too
    assert health.platform_answered("teams") is None and health.all_down(["teams"])
    assert health.platform_ok("teams") is not None and not health.all_down(["teams"])
    health.unreachable("slack", "network: URLError")  # only the check found it
    assert health.platform_answered("slack") is not None and not health.all_down(["slack"])
    health.credentials_refused("slack", "invalid_auth", retry_at=datetime.now(UTC))
    assert health.platform_answered("slack") is not None and health.problems() == []


def test_an_outreach_channel_that_refuses_the_bot_is_a_problem_until_a_message_goes(
    tmp_path, clock: FrozenClock
) -> None:
    """The bot was never invited to its channel: every card failed, the failure notices (no
    digest channel) failed too, and /healthz said all was well."""
    with FakeSlack() as fake:
        settings = Settings(
            database_url=f"sqlite:///{tmp_path}/rr.db",
            slack_bot_token="xoxb-test",
            slack_signing_secret="test-secret",
            slack_api_url=fake.url,
            outreach_channel="C0OUTREACH",
        )
        bot = build(settings, clock=clock)
        upgrade(bot.services.db.engine)
        on_rota(bot.services.db, "outreach", "Alex Carter", "U01ALEX", clock.now())
        fake.fail("chat.postMessage", times=100, error="not_in_channel", channel="C0OUTREACH")
        try:
            raise_review(services=bot.services, request=request(), by=NURSE)
            drain(bot.services, bot.senders)
            check_channels(bot.services)
            with serve(bot.http_app) as url:
                answer = requests.get(f"{url}/healthz", timeout=10)
                assert answer.status_code == 503
                assert answer.json()["problems"] == [
                    "the outreach slack channel C0OUTREACH does not take the bot's messages "
                    "(Slack refused: not_in_channel): its cards and alerts are not being seen"
                ]
                fake.failures.clear()  # invited
                raise_review(services=bot.services, request=request(), by=NURSE)
                drain(bot.services, bot.senders)
                check_channels(bot.services)
                assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
        finally:
            bot.services.db.dispose()
