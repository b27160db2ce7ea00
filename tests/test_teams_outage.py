"""A Teams trust while the Bot Connector is down: the family is asked to phone as well.

The bot knows its messages are not getting through when one fails (a 5xx, no answer) or when
its minute's check, which calls the connector itself, fails; an msal token from msal's cache
proves nothing about the connector. The warning ends when a message goes, or, when only the
check found the outage, when the check reaches the connector again. A connector refusing the
bot's token keeps the warning (and /healthz 503) until it takes the token again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests

from handlers.teams import build_teams
from reviews import escalation, service
from reviews.channels import check_channels
from reviews.context import Services
from reviews.outbox import ALARM_ATTEMPTS, DeliveryError, Sender, check_platforms, drain
from storage.database import Database
from tests.support.builders import NURSE, make_services, on_rota, request
from tests.support.builders import OUTREACH as OUTREACH_NURSE
from tests.support.clock import FrozenClock
from tests.support.fake_microsoft import TENANT, FakeMicrosoft
from tests.support.public_pages import PublicPages, public_pages, send, stored
from tests.support.teams_activities import OUTREACH, TEAMS_ROUTE, teams_settings

DELAYED = "Our messages to the outreach team are not getting through right now"
TOLD = "The critical care outreach team has been told"


@pytest.fixture
def site(db: Database, clock: FrozenClock) -> Iterator[PublicPages]:
    with public_pages(make_services(db, clock, routes=(TEAMS_ROUTE,))) as site:
        yield site


@pytest.fixture
def teams(site: PublicPages, ms: FakeMicrosoft) -> dict[str, Sender]:
    adapter = build_teams(site.services, teams_settings(ms), http_client=ms.session())
    return {"teams": adapter.sender}


def connector_back(ms: FakeMicrosoft) -> None:
    with ms._lock:
        ms.failures.clear()


def cards(ms: FakeMicrosoft) -> list[str]:
    """The request cards the outreach channel was sent (tried, or shown)."""
    texts = [call.said for call in ms.posts_to(OUTREACH)]
    return [text for text in texts if text.startswith("Rapid review")]


def healthz(site: PublicPages) -> requests.Response:
    return requests.get(site.url + "/healthz", timeout=10)


def test_while_the_connector_fails_messages_the_family_is_asked_to_phone_until_one_goes(
    site: PublicPages, teams: dict[str, Sender], ms: FakeMicrosoft, clock: FrozenClock
) -> None:
    services = site.services
    check_platforms(services, teams)  # Entra gives the bot a token; the connector answers
    ms.fail_next(503, times=1000, to="/v3/conversations")  # then the connector fails
    assert TOLD in send(site).text  # nothing has failed yet: the bot cannot know
    drain(services, teams)  # the card fails
    assert DELAYED in send(site).text
    answer = healthz(site)
    assert answer.status_code == 200 and answer.json()["warnings"] == [
        "teams cannot be reached (a message failed: Bot Connector 503); messages wait and "
        "are retried"
    ]
    check_platforms(services, teams)  # the minute's check fails too
    assert DELAYED in send(site).text

    connector_back(ms)
    tried = len(cards(ms))
    check_platforms(services, teams)  # it answers the check: not yet proof messages go
    assert DELAYED in send(site).text
    clock.advance(minutes=1)
    drain(services, teams)  # the cards go, each once
    assert len(cards(ms)[tried:]) == len(set(cards(ms))) == len(stored(site)) == 4
    third = send(site)
    assert TOLD in third.text and DELAYED not in third.text
    answer = healthz(site)
    assert answer.status_code == 200 and answer.json()["warnings"] == []


def test_the_minute_check_finds_the_connector_down_when_no_message_has_tried(
    site: PublicPages, teams: dict[str, Sender], ms: FakeMicrosoft
) -> None:
    # As the bot beside its sender process on PostgreSQL, which sends nothing itself.
    check_platforms(site.services, teams)  # msal now holds a token in its cache
    ms.fail_next(503, times=1000, to="/v3/conversations")
    check_platforms(site.services, teams)
    assert DELAYED in send(site).text
    connector_back(ms)
    check_platforms(site.services, teams)
    assert DELAYED not in send(site).text


def test_a_connector_refusing_the_bot_keeps_the_warning_until_it_takes_the_token(
    site: PublicPages, teams: dict[str, Sender], ms: FakeMicrosoft, clock: FrozenClock
) -> None:
    services = site.services
    ms.fail_next(401, times=1000, to="/v3/conversations")  # the connector refuses the bot
    send(site)
    drain(services, teams)
    assert DELAYED in send(site).text
    check_platforms(services, teams)  # a minute later: msal's cached token is no proof
    assert DELAYED in send(site).text
    refused = healthz(site)
    assert refused.status_code == 503
    assert refused.json()["problems"] == [
        "teams refuses the bot's credentials (Bot Connector refused the bot's token (401))"
    ]

    connector_back(ms)  # IT fixes the registration
    tried = len(cards(ms))
    check_platforms(services, teams)
    assert DELAYED not in send(site).text and healthz(site).status_code == 200
    clock.advance(timedelta(minutes=1).total_seconds())
    drain(services, teams)  # the held cards go, each once
    assert len(cards(ms)[tried:]) == len(set(cards(ms))) == len(stored(site)) == 4


class LateConnector(requests.Session):
    """The Bot Connector posts every activity and answers after the bot stopped waiting."""

    def __init__(self, inner: requests.Session):
        super().__init__()
        self.inner = inner

    def request(self, method, url, *args, **kwargs):
        answer = self.inner.request(method, url, *args, **kwargs)
        if method == "POST" and "/activities" in url:
            raise requests.ReadTimeout("read timed out")
        return answer


def test_a_card_whose_answers_are_lost_is_not_posted_every_minute_for_a_day(db, clock, ms):
    """Teams cannot be asked whether a message arrived: with every answer lost, the same card
    landed in the channel every minute (35 times in 30 minutes), for up to a day."""
    services = make_services(db, clock, routes=(TEAMS_ROUTE,))
    adapter = build_teams(services, teams_settings(ms), http_client=LateConnector(ms.session()))
    service.raise_review(services=services, request=request(news2=""), by=NURSE)
    for _ in range(30 * 6):  # 30 minutes, 10 s ticks
        clock.advance(seconds=10)
        escalation.sweep(services)
        drain(services, {"teams": adapter.sender})
    landed = [c for c in ms.posts_to(OUTREACH) if c.said.startswith("Rapid review")]
    assert 1 <= len(landed) <= ALARM_ATTEMPTS
    check_channels(services, {"teams": adapter.sender})
    assert services.health.problems() == []  # they arrived: the channel takes the bot's posts

    # The connector answers again and the next card goes: the channel takes the bot's posts,
    # yet the first card, which may be there already, is not posted again.
    answering = {
        "teams": build_teams(services, teams_settings(ms), http_client=ms.session()).sender
    }
    service.raise_review(services=services, request=request(news2=""), by=NURSE)
    for _ in range(3):
        clock.advance(minutes=1)  # what still waits to retry to the channel goes first
        drain(services, answering)
        check_channels(services, answering)
    assert cards(ms)[len(landed) :] == ["Rapid review RR-0002 · URGENT · Ward 7 bed 12"]


def test_an_outreach_channel_the_bot_is_added_to_clears_within_a_check(
    site: PublicPages, teams: dict[str, Sender], ms: FakeMicrosoft
) -> None:
    """The bot's app was never added to the outreach team: Teams refused every card (403), and
    /healthz named the channel until the next card went, hours later on a quiet night. The
    check reads one member of the channel's roster, which posts nothing; the card Teams
    refused then goes, once."""
    services = site.services
    ms.not_installed.add(OUTREACH)
    service.raise_review(services=services, request=request(), by=NURSE)
    drain(services, teams)
    check_channels(services, teams)
    assert healthz(site).json()["problems"] == [
        f"the outreach teams channel {OUTREACH} does not take the bot's messages (Bot Connector "
        "refused (403: BotNotInConversationRoster)): its cards and alerts are not being seen"
    ]
    ms.install(OUTREACH)
    posted = len(ms.connector_calls("POST"))
    check_channels(services, teams)
    assert healthz(site).status_code == 200
    assert len(ms.connector_calls("POST")) == posted  # no message shows for a check
    for _ in range(2):
        drain(services, teams)
        check_channels(services, teams)
    assert cards(ms) == [cards(ms)[0]] * 2  # refused, then shown once the bot was added


def test_a_card_that_may_be_in_the_channel_is_not_posted_again_when_the_bot_is_added_back(
    site: PublicPages, teams: dict[str, Sender], ms: FakeMicrosoft, clock: FrozenClock
) -> None:
    """The connector answered 502 (it may have posted the card), then the bot's app was removed
    from the team before the retry, which Teams refused (403). Teams cannot be asked whether
    the first one arrived, yet the retry cleared that doubt: added back, the bot posted the card
    again, the first copy (if there) with live buttons and a stale state. Meanwhile /healthz
    names the channel: the refusal says the bot may not post there, whatever arrived before."""
    services = site.services
    teams_id = {"teams_user_id": "0a0a0a0a-0000-4000-8000-0000000000a1"}
    on_rota(services.db, "outreach", "Alex Carter", "U01ALEX", clock.now(), contact=teams_id)
    ms.fail_next(502, to=OUTREACH)
    service.raise_review(services=services, request=request(), by=NURSE)
    drain(services, teams)  # 502: it may be there
    ms.not_installed.add(OUTREACH)
    clock.advance(seconds=5)
    drain(services, teams)  # refused (403): failed for good
    check_channels(services, teams)
    assert healthz(site).json()["problems"] == [
        f"the outreach teams channel {OUTREACH} does not take the bot's messages (Bot Connector "
        "refused (403: BotNotInConversationRoster)): its cards and alerts are not being seen"
    ]
    ms.install(OUTREACH)
    for _ in range(2):
        check_channels(services, teams)
        drain(services, teams)
    assert healthz(site).status_code == 200
    assert len(cards(ms)) == 2  # the one that may be there, and the retry refused


def test_a_channel_that_takes_the_roster_read_but_refuses_posts_is_not_sent_a_card_each_check(
    site: PublicPages, teams: dict[str, Sender], ms: FakeMicrosoft, clock: FrozenClock
) -> None:
    """Teams lets the bot read the channel's roster yet refuses its posts as a conversation it
    does not know (404). Each refusal is answered by a re-send once Teams says the bot may
    post, so without a pace every check (30 s) would post the card again, be refused and
    report it to the managers, all night. Two go at once; then one a minute, doubling."""
    services = site.services
    teams_id = {"teams_user_id": "0a0a0a0a-0000-4000-8000-0000000000a1"}
    on_rota(services.db, "outreach", "Alex Carter", "U01ALEX", clock.now(), contact=teams_id)
    ms.fail_next(404, times=1000, to=f"/v3/conversations/{OUTREACH}/activities")
    service.raise_review(services=services, request=request(), by=NURSE)
    drain(services, teams)  # refused

    def checks(times: int) -> int:
        """How many times the card was tried in `times` checks (and drains), 30 s apart."""
        before = len(cards(ms))
        for _ in range(times):
            check_channels(services, teams)
            drain(services, teams)
            clock.advance(seconds=30)
        return len(cards(ms)) - before

    assert checks(1) == 1  # Teams says yes: the card goes again, and is refused
    assert checks(1) == 1  # perhaps removed again meanwhile: once more at once
    assert checks(2) == 1  # then one a minute after the last,
    assert checks(4) == 1  # two minutes,
    assert checks(8) == 1  # four minutes


def test_a_channel_only_its_moderators_may_post_in_stays_a_problem_without_asking(
    site: PublicPages, teams: dict[str, Sender], ms: FakeMicrosoft, clock: FrozenClock
) -> None:
    """A 403 that is not the bot missing from the team (a moderated channel) is not one an
    invitation mends: the roster (which would say yes) is not read, /healthz keeps naming the
    channel, and the card is not posted again at each check."""
    services = site.services
    ms.fail_next(403, times=1000, to=f"/v3/conversations/{OUTREACH}/activities")
    service.raise_review(services=services, request=request(), by=NURSE)
    drain(services, teams)  # refused
    for _ in range(6):
        check_channels(services, teams)
        drain(services, teams)
        clock.advance(seconds=30)
    assert len(cards(ms)) == 1
    assert not [c for c in ms.connector_calls("GET") if c.path.endswith("/pagedmembers")]
    answer = healthz(site)
    assert answer.status_code == 503 and OUTREACH in " ".join(answer.json()["problems"])


PROXY_PAGE = "<html><body><h1>Bad Gateway</h1>The trust's web proxy could not reach the site."


def goes_on_the_next_try(
    services: Services, teams: dict[str, Sender], ms: FakeMicrosoft, clock: FrozenClock
) -> None:
    """A minute on, the card is posted again, and nothing is left waiting or failed."""
    clock.advance(minutes=1)
    drain(services, teams)
    assert cards(ms) == ["Rapid review RR-0001 · URGENT · Ward 7 bed 12"] * 2  # it went
    with services.db.reading() as uow:
        left = uow.outbox.count_by_state()
    assert left.get("pending", 0) == left.get("failed", 0) == 0


def test_a_proxys_page_answered_in_the_connectors_place_is_no_card_posted(
    site: PublicPages, teams: dict[str, Sender], ms: FakeMicrosoft, clock: FrozenClock
) -> None:
    """A corporate proxy answering a post with its own error page, as HTTP 200, said nothing of
    the card: it was taken as posted (with no id) and never tried again, so the outreach channel
    never saw the request. It is tried again, and goes."""
    services = site.services
    service.raise_review(services=services, request=request(), by=NURSE)
    ms.fail_next(200, times=1, to=OUTREACH, page=PROXY_PAGE)
    drain(services, teams)
    assert cards(ms) == ["Rapid review RR-0001 · URGENT · Ward 7 bed 12"]  # the page
    goes_on_the_next_try(services, teams, ms, clock)


@pytest.mark.parametrize("status", [200, 204])
def test_an_empty_answer_to_a_card_is_no_card_posted(
    site: PublicPages,
    teams: dict[str, Sender],
    ms: FakeMicrosoft,
    clock: FrozenClock,
    status: int,
) -> None:
    """A proxy or WAF in front of the connector answering a post with nothing at all (an empty
    200, a 204) said nothing of the card either: the connector gives every message it posts an
    id. The card was taken as posted and never tried again. It is tried again, and goes."""
    services = site.services
    service.raise_review(services=services, request=request(), by=NURSE)
    ms.fail_next(status, times=1, to=OUTREACH, page="")
    drain(services, teams)
    goes_on_the_next_try(services, teams, ms, clock)


def test_an_empty_answer_to_a_card_update_is_no_card_updated(
    site: PublicPages, teams: dict[str, Sender], ms: FakeMicrosoft, clock: FrozenClock
) -> None:
    """The connector answers an update as it answers a post, naming the activity (its API
    reference: an Identification object). A proxy's empty 200 in its place was taken as
    the card updated: the channel's card went on showing the request waiting for someone, its
    Acknowledge button live, though Alex had taken it. It is tried again, and goes."""
    services = site.services
    teams_id = {"teams_user_id": "0a0a0a0a-0000-4000-8000-0000000000a1"}
    on_rota(services.db, "outreach", "Alex Carter", "U01ALEX", clock.now(), contact=teams_id)
    service.raise_review(services=services, request=request(), by=NURSE)
    drain(services, teams)
    service.acknowledge(services=services, review_id=1, by=OUTREACH_NURSE)
    ms.fail_next(200, times=1, to=f"{OUTREACH}/activities/", page="")
    drain(services, teams)
    clock.advance(minutes=1)
    drain(services, teams)
    updates = [c for c in ms.connector_calls("PUT") if OUTREACH in c.path]
    assert len(updates) == 2  # the one answered with nothing, and the one that went
    with services.db.reading() as uow:
        rows = uow.outbox.for_review(1)
    assert [row.state for row in rows if row.kind == "card_update"] == ["sent"]


def test_an_empty_answer_to_opening_a_chat_is_tried_again_not_a_crash(
    teams: dict[str, Sender], ms: FakeMicrosoft
) -> None:
    """A proxy's empty 200 where the connector opens a 1:1 chat for a direct message: no chat
    id, so nothing could be posted. It was a KeyError (a traceback in the log); it is a failure
    to try again, as any the connector's absence gives."""
    sender = teams["teams"]
    ms.fail_next(200, page="")
    with pytest.raises(DeliveryError) as raised:
        sender.connector.create_personal_conversation(  # type: ignore[attr-defined]
            sender.service_url,  # type: ignore[attr-defined]
            "29:a1e0a1e0",
            TENANT,
        )
    assert not raised.value.permanent and not raised.value.credentials
