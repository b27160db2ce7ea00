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


def pytest_sessionfinish(session: pytest.Session) -> None:
    if postgres_unavailable() is None:
        drop_template()
