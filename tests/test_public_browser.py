"""The family route in a real browser: Playwright driving Debian's Chromium on a 360x740 phone
screen, axe-core on every page, screenshots for docs/family-pages.md.

Without Chromium the test is skipped on a workstation, and FAILS in CI (CI=true), where .ci/run
installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from storage.database import Database
from tests.support.builders import OUTREACH, make_services, on_rota
from tests.support.clock import FrozenClock
from tests.support.databases import sqlite_database
from tests.support.fake_slack import FakeSlack
from tests.support.public_pages import PHONE, PublicPages, public_pages
from tests.support.slack_requests import button_click, slack_bot

CHROMIUM = os.environ.get("RAPIDREVIEW_CHROMIUM", "/usr/bin/chromium")
if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

PHONE_SCREEN: ViewportSize = {"width": 360, "height": 740}


def need_chromium() -> None:
    if shutil.which(CHROMIUM) or Path(CHROMIUM).is_file():
        return
    message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def browser_page() -> Iterator[Any]:
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        context = browser.new_context(
            viewport=PHONE_SCREEN, device_scale_factor=1, is_mobile=True, has_touch=True
        )
        # No JavaScript is needed by any page; the browser's is only for axe below.
        yield context.new_page()
        browser.close()


@pytest.fixture
def site(tmp_path: Path, clock: FrozenClock) -> Iterator[PublicPages]:
    with sqlite_database(str(tmp_path)) as url:
        db = Database(url)
        on_rota(db, "outreach", OUTREACH.name, OUTREACH.user_id, clock.now() - timedelta(hours=1))
        with public_pages(make_services(db, clock)) as site:
            yield site
        db.dispose()


class Audit:
    """axe-core (the copy axe-playwright-python ships) on each page, and a screenshot of it."""

    def __init__(self, page: Any, screenshots: Path):
        from axe_playwright_python.sync_playwright import Axe

        self.page, self.axe, self.screenshots = page, Axe(), screenshots
        self.found: dict[str, list[str]] = {}

    def check(self, name: str) -> None:
        self.page.screenshot(path=str(self.screenshots / f"{name}.png"), full_page=True)
        violations = self.axe.run(self.page).response["violations"]
        self.found[name] = sorted(f"{v['impact']}: {v['id']}" for v in violations)
        grave = [v for v in violations if v["impact"] in ("serious", "critical")]
        assert not grave, f"{name}: " + json.dumps(
            [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in grave], indent=1
        )


def test_a_relative_asks_follows_the_status_link_and_sees_it_seen(
    browser_page: Any, site: PublicPages, screenshots: Path
) -> None:
    page, audit = browser_page, Audit(browser_page, screenshots)
    page.goto(f"{site.url}/concern")
    audit.check("01-choose-ward")
    page.get_by_role("link", name="Ward 7 (Acute Medicine)").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Ward 7 (Acute Medicine)"
    audit.check("02-ward")
    page.get_by_role("link", name="Ask for an urgent review now").click()
    audit.check("03-request-form")

    # Mistakes: no name, a phone number too short.
    page.get_by_label("I am family, a carer or a friend of the patient").check()
    page.get_by_label("The patient's name").fill("Ann Bloggs")
    page.get_by_label("What is worrying you?").fill("Mum is not making sense")
    page.get_by_label("Your phone number").fill("0123")
    page.get_by_role("button", name="Send my request").click()
    summary = page.get_by_role("alert")
    assert "There is a problem" in summary.inner_text()
    assert page.evaluate("document.activeElement.className") == "error-summary"  # no script
    assert "Enter your name" in summary.inner_text()
    assert page.get_by_label("What is worrying you?").input_value() == "Mum is not making sense"
    assert page.get_by_label("I am family, a carer or a friend of the patient").is_checked()
    audit.check("04-request-form-errors")
    summary.get_by_role("link", name="Enter your name").click()
    assert page.evaluate("document.activeElement.id") == "your_name"

    page.get_by_label("Your name").fill("Jo Bloggs")
    page.get_by_label("Your phone number").fill("07700 900123")
    page.get_by_role("button", name="Send my request").click()
    assert "RR-0001" in page.locator(".reference").inner_text()
    assert PHONE in page.content()
    audit.check("05-request-sent")

    page.get_by_role("link", name="/concern/status/").click()
    assert page.get_by_text("Not yet").count() == 3
    audit.check("06-status-received")

    acknowledge_in_slack(site)
    page.reload()
    seen = page.locator("li.done", has_text="The outreach team has seen it")
    assert "09:04" in seen.inner_text()
    audit.check("07-status-seen")

    page.goto(f"{site.url}/concern/no-such-ward")
    audit.check("08-unknown-ward")
    (screenshots / "axe-results.json").write_text(json.dumps(audit.found, indent=1) + "\n")


def acknowledge_in_slack(site: PublicPages) -> None:
    """The outreach nurse presses Acknowledge on the card, through the real Slack app."""
    site.services.clock.advance(minutes=4)  # type: ignore[attr-defined]
    with FakeSlack() as fake, slack_bot(site.services, fake) as bot:
        assert bot.post(button_click("review_acknowledge", "1", user_id=OUTREACH.user_id)).ok
        deadline = time.monotonic() + 10
        while state(site) != "acknowledged":
            assert time.monotonic() < deadline, "the press never acknowledged it"
            time.sleep(0.02)


def state(site: PublicPages) -> str:
    with site.services.db.unit_of_work() as uow:
        review = uow.reviews.get(1)
    return review.state if review else ""


def test_a_relative_tells_us_how_they_are_today(
    browser_page: Any, site: PublicPages, screenshots: Path
) -> None:
    page, audit = browser_page, Audit(browser_page, screenshots)
    page.goto(f"{site.url}/concern/ward-7")
    page.get_by_role("link", name="Tell us how they are today").click()
    audit.check("09-daily-view")
    page.get_by_role("button", name="Send").click()
    summary = page.get_by_role("alert")
    assert "Select better, about the same, or worse" in summary.inner_text()
    audit.check("10-daily-view-errors")
    page.get_by_label("I am family, a carer or a friend of the patient").check()
    page.get_by_label("Worse").check()
    page.get_by_label("No", exact=True).check()
    page.get_by_role("button", name="Send").click()
    assert "You said they are worse than yesterday" in page.content()
    audit.check("11-daily-view-worse")
    page.get_by_role("link", name="Ask for an urgent review now").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Ask for an urgent review"
