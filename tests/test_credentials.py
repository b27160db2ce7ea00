"""A revoked Slack token or an expired Teams secret holds messages instead of failing them, and
raises the alarm everywhere else: /healthz 503, the log once, the other platform's digest."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests

from handlers.slack import SlackSender
from reviews.notify import Route
from reviews.outbox import CREDENTIALS_RETRY, Sender, check_platforms, drain
from reviews.service import raise_review
from storage.database import Database
from tests.support.builders import (
    NURSE,
    SLACK_ROUTE,
    RecordingSender,
    make_services,
    on_rota,
    request,
)
from tests.support.clock import FrozenClock
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import SlackBot, slack_bot

TEAMS_ROUTE = Route("teams", "19:outreach@thread.tacv2", "19:digest@thread.tacv2")


@pytest.fixture
def bot(db: Database, clock: FrozenClock, fake: FakeSlack) -> Iterator[SlackBot]:
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", start=clock.now() - timedelta(hours=1))
    services = make_services(db, clock, routes=(SLACK_ROUTE, TEAMS_ROUTE))
    with slack_bot(services, fake) as bot:
        yield bot


def healthz(bot: SlackBot) -> requests.Response:
    return requests.get(bot.events_url.replace("/slack/events", "/healthz"), timeout=10)


def delivered(fake: FakeSlack) -> list[str]:
    return [c.body["channel"] for c in fake.called("chat.postMessage") if c.answer.get("ok")]


def test_a_revoked_token_holds_messages_until_it_is_fixed_then_each_goes_once(
    bot: SlackBot, fake: FakeSlack, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    teams = RecordingSender()
    senders: dict[str, Sender] = {"slack": SlackSender(bot.client), "teams": teams}
    raise_review(services=bot.services, request=request(), by=NURSE)
    fake.fail("chat.postMessage", times=1000, error="token_revoked")

    with caplog.at_level(logging.ERROR, logger="reviews.outbox"):
        drain(bot.services, senders)
        clock.advance(CREDENTIALS_RETRY.total_seconds())
        # The first drain sends to both destinations side by side: the second tries too unless
        # the first's refusal was recorded before it began.
        first = len(fake.called("chat.postMessage"))
        assert first in (1, 2)
        for _ in range(2):
            drain(bot.services, senders)
            clock.advance(CREDENTIALS_RETRY.total_seconds())

    assert delivered(fake) == []
    assert len(fake.called("chat.postMessage")) == first + 2, "one try per retry, not per message"
    with bot.services.db.unit_of_work() as uow:
        assert uow.outbox.count_by_state().get("failed", 0) == 0
    refusals = [r for r in caplog.records if "refuses the bot's credentials" in r.message]
    assert len(refusals) == 1, "the log says it once per outage, not once per message"
    [alarm] = teams.to(TEAMS_ROUTE.digest_channel)
    assert "Slack refuses the bot's credentials (Slack refused the token: token_revoked)" in (
        alarm.message.text
    )
    unhealthy = healthz(bot)
    assert unhealthy.status_code == 503
    assert unhealthy.json()["problems"] == [
        "slack refuses the bot's credentials (Slack refused the token: token_revoked)"
    ]

    fake.failures.clear()  # IT issues a new token
    drain(bot.services, senders)

    # The card and the bleep holder's direct message, each once (the ping first: its own lane).
    assert sorted(delivered(fake)) == ["C0OUTREACH", "U01ALEX"]
    assert healthz(bot).status_code == 200


def test_a_revoked_token_shows_before_any_message_needs_it(
    bot: SlackBot, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    senders: dict[str, Sender] = {"slack": SlackSender(bot.client)}
    fake.fail("auth.test", times=2, error="invalid_auth")
    with caplog.at_level(logging.ERROR, logger="reviews.outbox"):
        check_platforms(bot.services, senders)
        check_platforms(bot.services, senders)
    assert healthz(bot).json()["problems"] == [
        "slack refuses the bot's credentials (Slack refused the token: invalid_auth)"
    ]
    assert len(caplog.records) == 1

    check_platforms(bot.services, senders)
    assert healthz(bot).status_code == 200


def test_slack_unreachable_is_a_warning_not_a_failure(bot: SlackBot) -> None:
    with FakeSlack() as gone:
        url = gone.url
    from slack_sdk import WebClient

    unreachable = SlackSender(WebClient(token="xoxb-test", base_url=url, retry_handlers=[]))
    check_platforms(bot.services, {"slack": unreachable})
    answer = healthz(bot)
    assert answer.status_code == 200
    assert answer.json()["warnings"] == [
        "slack cannot be reached (network: URLError); messages wait and are retried"
    ]


def test_an_expired_teams_secret_is_held_not_failed(db: Database, clock: FrozenClock) -> None:
    from reviews.outbox import DeliveryError

    services = make_services(db, clock, routes=(SLACK_ROUTE, TEAMS_ROUTE))
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", start=clock.now() - timedelta(hours=1))
    raise_review(services=services, request=request(), by=NURSE)
    expired = DeliveryError("token refused: invalid_client", credentials=True)
    teams = RecordingSender(failures=[expired])
    slack = RecordingSender()
    drain(services, {"slack": slack, "teams": teams})

    assert sorted(i.address for i in slack.sent) == ["C0DIGEST", "C0OUTREACH", "U01ALEX"]
    [alarm] = [i for i in slack.sent if i.address == "C0DIGEST"]
    assert "Teams refuses the bot's credentials" in alarm.message.text
    assert services.health.problems() == [
        "teams refuses the bot's credentials (token refused: invalid_client)"
    ]
    clock.advance(CREDENTIALS_RETRY.total_seconds())
    drain(services, {"slack": slack, "teams": teams})
    assert [i.address for i in teams.sent] == [TEAMS_ROUTE.outreach_channel]
    assert services.health.problems() == []
