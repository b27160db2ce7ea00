"""Fixtures shared by the whole suite. `database_url` runs a test on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage.database import Database
from tests.support.builders import make_services
from tests.support.clock import FrozenClock
from tests.support.databases import (
    drop_template,
    postgres_database,
    postgres_unavailable,
    sqlite_database,
)
from tests.support.fake_microsoft import FakeMicrosoft
from tests.support.fake_slack import FakeSlack
from tests.support.fake_texts import FakeNotify, FakePager
from tests.support.public_pages import PublicPages, public_pages


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        reason = postgres_unavailable()
        if reason:
            pytest.skip(reason)
        with postgres_database() as url:
            yield url
    else:
        with sqlite_database(str(tmp_path)) as url:
            yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for a test that needs PostgreSQL itself (skipped without)."""
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    with postgres_database() as url:
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    """A fake Slack Web API on a loopback port; files that need another kind define their own."""
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def notify() -> Iterator[FakeNotify]:
    """A fake GOV.UK Notify on a loopback port."""
    with FakeNotify() as fake:
        yield fake


@pytest.fixture
def pager() -> Iterator[FakePager]:
    """A fake paging gateway on a loopback port; PAGER_WEBHOOK_URL = pager.url + "/page"."""
    with FakePager() as fake:
        yield fake


@pytest.fixture
def ms(tmp_path: Path) -> Iterator[FakeMicrosoft]:
    """Fake Microsoft (Bot Framework, Entra, Graph); files that need people in it define their
    own."""
    with FakeMicrosoft(tmp_path) as fake:
        yield fake


@pytest.fixture
def site(db: Database, clock: FrozenClock) -> Iterator[PublicPages]:
    """The public pages (family requests and check-ins) served over HTTP on `db`; files that
    need someone on the rota first define their own."""
    with public_pages(make_services(db, clock)) as site:
        yield site


@pytest.fixture
def clock() -> FrozenClock:
    # A Tuesday in December, in winter time (UTC+0 in London).
    return FrozenClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where a test writes the pictures docs/ shows: docs/screenshots/ when asked for with
    RAPIDREVIEW_SCREENSHOTS=1 (to bring the committed ones up to date), else a temporary
    folder, so that running the suite leaves the checkout as it found it."""
    if os.environ.get("RAPIDREVIEW_SCREENSHOTS") == "1":
        return Path(__file__).resolve().parents[1] / "docs" / "screenshots"
    return tmp_path


# The suite's longest tests, longest first (`./scripts/test --durations=40` lists them; their
# parameters share a line). On CI's 2 cores the run must end within 10 minutes, and a 38 s
# test handed out last made the run's tail while the other workers stood idle. A name here
# that no longer matches only loses its place at the front; a new long test belongs here.
LONGEST_FIRST = (
    "tests/test_surge.py::test_a_surge_with_a_replica_killed_loses_nothing_and_sends_nothing_twice",
    "tests/test_drills.py::test_slack_answering_after_10_seconds",
    "tests/test_drills.py::test_postgresql_hanging_then_back",
    "tests/test_replicas.py::test_three_replicas_send_each_message_exactly_once",
    "tests/test_replicas.py::test_killed_after_slack_posted_the_card_and_before_it_was_recorded_the_card_is_not_doubled",
    "tests/test_drills.py::test_slack_failing_then_slow",
    "tests/test_texts_replicas.py::test_three_replicas_text_each_person_once_per_level",
    "tests/test_log_scan.py::test_no_identifier_in_any_log_line_of_a_full_run",
    "tests/test_replicas.py::test_killed_mid_ladder_and_restarted_nothing_lost_nothing_doubled",
    "tests/test_digest_cli.py::test_digest_prints_and_posts_once",
    "tests/test_form_relay.py::test_forms_open_from_the_sender_process_and_from_the_bot_while_it_hangs",
    "tests/test_texts_replicas.py::test_killed_mid_ladder_and_restarted_texts_each_person_once",
    "tests/test_drills.py::test_a_full_disk",
    "tests/test_drills.py::test_postgresql_cut_then_back",
    "tests/test_teams_outage.py::test_a_card_whose_answers_are_lost_is_not_posted_every_minute_for_a_day",
    "tests/test_form_relay.py::test_a_sender_that_does_not_say_it_opens_forms_is_handed_none",
    "tests/test_sender_process.py::test_a_sender_heard_from_clears_the_warning_and_one_gone_silent_is_killed",
    "tests/test_public_requests.py::test_the_status_page_of_a_hung_database_says_so_within_seconds",
    "tests/test_digest_posting.py::test_two_replicas_at_once_post_once_per_destination",
    "tests/test_stopping.py::test_a_bot_stopped_mid_drain_hands_back_what_it_had_not_begun_and_leaves_quietly",
    "tests/test_drills.py::test_slack_answering_200_with_a_failure_that_passes",
    "tests/test_sender_process.py::test_a_sender_process_killed_is_said_and_replaced_and_nothing_waits_for_it",
    "tests/test_digest_cli.py::test_a_digest_slack_did_not_take_is_said_to_be_queued_not_posted",
    "tests/test_sender_process.py::test_what_a_dead_sender_process_held_goes_at_once_not_after_its_lease",
    "tests/test_form_answers.py::test_a_stalled_database_gets_not_confirmed_from_teams_outcome_and_cancel",
    "tests/test_sender_process.py::test_the_bot_sends_from_its_sender_process_and_sends_itself_while_that_one_hangs",
    "tests/test_permissions.py::test_who_may_see_the_digest",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """When the workers are handed one test at a time (scripts/test: `--maxschedchunk 1`),
    the longest tests go first and the rest follow in their usual order: the short ones fill
    in around the long ones and the run ends on short tests. The other tests that start
    processes keep their places, spread through the run, rather than all crowding the 2
    cores at once. (With xdist's default chunks, a worker's first chunk would hold every
    long test: left alone.) Every worker sorts alike, as xdist requires."""
    if config.getoption("maxschedchunk", None) != 1:
        return
    rank = {nodeid: place for place, nodeid in enumerate(LONGEST_FIRST)}

    last = len(LONGEST_FIRST)
    # Stable: the tests not listed keep the order they were collected in.
    items.sort(key=lambda item: rank.get(item.nodeid.partition("[")[0], last))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if postgres_unavailable() is None:
        drop_template()
