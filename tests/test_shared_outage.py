"""A platform outage one process's message found is known to every process within seconds.

On PostgreSQL the sender process sends, and the bot beside it serves the public pages: a Slack
outage the sender's messages met was known only to it, and the bot's answer page told a family
"the outreach team has been told" until its own platform check, up to a minute later. Here two
Services on one PostgreSQL database stand for the two processes (or two replicas)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from handlers.slack import SlackSender
from handlers.slack.client import PooledWebClient
from reviews.context import Services
from reviews.health import Health
from reviews.outbox import Sender, drain
from storage.database import Database
from tests.support.builders import make_services
from tests.support.clock import FrozenClock
from tests.support.fake_slack import FakeSlack
from tests.support.public_pages import PublicPages, public_pages, send, status_link

DELAYED = "Our messages to the outreach team are not getting through right now"
TOLD = "The critical care outreach team has been told"

pytestmark = pytest.mark.postgres


class Monotonic:
    """A process's monotonic clock, moved by hand: the seconds a shared outage is cached."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self) -> None:
        self.now += 3.0  # "within a few seconds" (reviews.health.SHARED_FOR is 2)


@contextmanager
def two_processes(
    postgres_url: str, clock: FrozenClock
) -> Iterator[tuple[Services, PublicPages, Monotonic]]:
    """The sender process's services, and the bot's public pages (with its monotonic clock),
    each with its own connections to one PostgreSQL database."""
    sender_db, bot_db = Database(postgres_url), Database(postgres_url)
    monotonic = Monotonic()
    try:
        bot = dataclasses.replace(make_services(bot_db, clock), health=Health(monotonic=monotonic))
        with public_pages(bot) as site:
            yield make_services(sender_db, clock), site, monotonic
    finally:
        sender_db.dispose()
        bot_db.dispose()


def slack(fake: FakeSlack) -> dict[str, Sender]:
    return {"slack": SlackSender(PooledWebClient(token="xoxb-test", base_url=fake.url))}


def healthz(site: PublicPages) -> dict[str, Any]:
    answer = requests.get(f"{site.url}/healthz", timeout=10)
    assert answer.status_code == 200  # an unreachable platform is a warning: messages wait
    body: dict[str, Any] = answer.json()
    return body


def slack_back(fake: FakeSlack) -> None:
    with fake._lock:
        fake.failures.clear()


def test_an_outage_the_sender_process_met_asks_a_family_on_the_bots_page_to_phone(
    postgres_url: str, fake: FakeSlack, clock: FrozenClock
) -> None:
    """Slack answers the sender process's messages 503: the bot's answer page, which runs no
    sender and has not checked Slack itself, asks the family to phone as well within a
    few seconds; once a message goes, it says the team has been told again."""
    with two_processes(postgres_url, clock) as (sender, site, monotonic):
        first = send(site)
        assert TOLD in first.text and DELAYED not in first.text
        fake.fail("chat.postMessage", status=503, times=1_000_000)
        drain(sender, slack(fake))  # the card meets Slack's 503
        assert sender.health.all_down(["slack"])  # the sender process knew, and only it

        monotonic.advance()  # a couple of seconds on: no platform check of the bot's own
        answer = send(site)
        assert DELAYED in answer.text and TOLD not in answer.text
        assert DELAYED in requests.get(status_link(answer), timeout=10).text
        # What the bot's /healthz tells a load balancer or the on-call engineer, at once.
        [warning] = healthz(site)["warnings"]
        assert warning.startswith("slack cannot be reached, as a message another process sent")

        slack_back(fake)
        clock.advance(minutes=5)
        drain(sender, slack(fake))  # the cards go
        assert not sender.health.all_down(["slack"])
        monotonic.advance()
        after = send(site)
        assert TOLD in after.text and DELAYED not in after.text
        assert healthz(site)["warnings"] == []


def test_a_message_another_process_sends_ends_the_outage_for_every_process(
    postgres_url: str, fake: FakeSlack, clock: FrozenClock
) -> None:
    """The bot (a standby drainer, or another replica) sends a message once Slack is back: the
    outage the sender process's message found ends there too, and on both processes' pages,
    though the sender process has sent nothing since."""
    with two_processes(postgres_url, clock) as (sender, site, monotonic):
        send(site)
        fake.fail("chat.postMessage", status=503, times=1_000_000)
        drain(sender, slack(fake))
        monotonic.advance()
        assert DELAYED in send(site).text

        slack_back(fake)
        clock.advance(minutes=5)
        drain(site.services, slack(fake))  # the bot sends them
        assert TOLD in send(site).text  # at once: its own message went

        with public_pages(sender) as senders_pages:  # the sender process's view
            assert TOLD in send(senders_pages).text
        assert not sender.health.all_down(["slack"]) and sender.health.warnings() == []
