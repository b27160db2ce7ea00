"""The public pages for patients and families, over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from reviews.clock import FrozenClock
from storage.database import Database
from tests.support.builders import make_services
from tests.support.public_pages import PHONE, PublicPages, public_pages


@pytest.fixture
def site(db: Database, clock: FrozenClock) -> Iterator[PublicPages]:
    with public_pages(make_services(db, clock)) as site:
        yield site


def get(site: PublicPages, path: str) -> requests.Response:
    return requests.get(site.url + path, timeout=10)


def assert_secure(response: requests.Response) -> None:
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_choose_your_ward_lists_only_the_wards_of_the_file(site: PublicPages) -> None:
    page = get(site, "/concern")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert_secure(page)
    for code, name in [("ward-7", "Ward 7 (Acute Medicine)"), ("cedar", "Cedar Ward (Surgery)")]:
        assert f'href="/concern/{code}"' in page.text and name in page.text
    assert "<script" not in page.text and "http" not in page.text.split("<body>")[1]


def test_the_ward_page_offers_an_urgent_review_and_the_daily_view(site: PublicPages) -> None:
    page = get(site, "/concern/ward-7")
    assert page.status_code == 200
    assert_secure(page)
    assert "Ask for an urgent review now" in page.text
    assert 'href="/concern/ward-7/review"' in page.text
    assert 'href="/concern/ward-7/today"' in page.text
    assert PHONE in page.text


def test_an_unknown_ward_is_404_with_the_phone_line(site: PublicPages) -> None:
    page = get(site, "/concern/ward-99")
    assert page.status_code == 404
    assert_secure(page)
    assert "We cannot find that ward" in page.text and PHONE in page.text


def test_the_stylesheet_is_our_own_and_nothing_comes_from_another_site(site: PublicPages) -> None:
    page = get(site, "/concern")
    assert '<link rel="stylesheet" href="/concern-style.css">' in page.text
    css = get(site, "/concern-style.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert_secure(css)
    assert "url(" not in css.text and "@import" not in css.text


def test_a_body_over_16_kb_is_refused_with_the_phone_line(site: PublicPages) -> None:
    answer = requests.post(
        site.url + "/concern/ward-7/review", data={"concern": "x" * 17_000}, timeout=10
    )
    assert answer.status_code == 413
    assert_secure(answer)
    assert "NOT sent" in answer.text and PHONE in answer.text
