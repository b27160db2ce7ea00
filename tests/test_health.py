"""GET /healthz: 200 with figures when the database answers, 503 when it does not."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
import pytest
import requests

from bot import Bot, build, start_scheduler
from handlers.http import make_http_app
from reviews.channels import check_channels
from reviews.health import Health
from reviews.model import format_reference
from reviews.outbox import drain
from reviews.service import acknowledge, cancel, raise_review
from settings import Settings
from storage.database import Database
from tests.support.builders import NURSE, OUTREACH, on_rota, request
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


def test_a_sweep_or_drain_not_completed_for_ten_seconds_is_a_problem() -> None:
    # The bot's own limit (the test below shortens it to see a real hang quickly).
    now = [0.0]
    health = Health(monotonic=lambda: now[0])
    for job in ("sweep", "outbox"):
        health.watch(job)
    health.started("sweep")
    now[0] = 9.9
    assert health.problems() == []
    now[0] = 10.1
    assert health.problems() == [
        "outbox has not completed for 10 s",
        "sweep has not completed for 10 s (still running)",
    ]


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


def test_the_database_ends_an_outage_only_as_read_after_this_process_recorded_it() -> None:
    """Another process's message going clears the database, and this process's outage a
    message found ends as it reads that; but a read begun before this process recorded its
    own failure (written to the database first) cannot have seen it, and ends nothing."""
    now = [100.0]
    health = Health(monotonic=lambda: now[0])
    read_at = health.elsewhere_due()
    assert read_at == 100.0
    now[0] = 101.0
    health.unreachable("slack", "a message failed: 503", by_delivery=True)
    assert health.elsewhere({}, read_at=read_at) == [] and health.all_down(["slack"])
    assert health.elsewhere_due() is None  # read a moment ago: taken as it stands
    now[0] = 103.0
    read_at = health.elsewhere_due()
    assert read_at == 103.0
    assert health.elsewhere({}, read_at=read_at) == ["slack"] and not health.all_down(["slack"])
    assert health.warnings() == []


CHANNEL = "C0OUTREACH"
REFUSED = (
    f"the outreach slack channel {CHANNEL} does not take the bot's messages "
    "(Slack refused: not_in_channel): its cards and alerts are not being seen"
)


@contextmanager
def slack_bot(
    database_url: str, clock: FrozenClock, fake: FakeSlack, channel: str = CHANNEL
) -> Iterator[Bot]:
    """A copy of the bot on Slack (one replica), serving /healthz and its other endpoints;
    `channel` its OUTREACH_CHANNEL."""
    settings = Settings(
        database_url=database_url,
        slack_bot_token="xoxb-test",
        slack_signing_secret="test-secret",
        slack_api_url=fake.url,
        outreach_channel=channel,
    )
    bot = build(settings, clock=clock)
    try:
        yield bot
    finally:
        bot.services.db.dispose()


def healthz(url: str) -> requests.Response:
    return requests.get(f"{url}/healthz", timeout=10)


def test_an_outreach_channel_that_refuses_the_bot_is_a_problem_until_a_message_goes(
    database_url: str, clock: FrozenClock
) -> None:
    """The bot was never invited to its channel: every card failed, the failure notices (no
    digest channel) failed too, and /healthz said all was well. An app installed without the
    scopes to ask Slack whether it is in the channel learns it was invited when a message goes."""
    with FakeSlack(outside={CHANNEL}) as fake, slack_bot(database_url, clock, fake) as bot:
        fake.fail("conversations.info", times=100, status=200, error="missing_scope")
        on_rota(bot.services.db, "outreach", "Alex Carter", "U01ALEX", clock.now())
        raise_review(services=bot.services, request=request(), by=NURSE)
        drain(bot.services, bot.senders)
        check_channels(bot.services, bot.senders)
        with serve(bot.http_app) as url:
            assert healthz(url).status_code == 503
            assert healthz(url).json()["problems"] == [REFUSED]
            fake.invite(CHANNEL)
            check_channels(bot.services, bot.senders)
            assert healthz(url).json()["problems"] == [REFUSED]  # Slack could not be asked
            raise_review(services=bot.services, request=request(), by=NURSE)
            drain(bot.services, bot.senders)
            check_channels(bot.services, bot.senders)
            assert healthz(url).status_code == 200


def test_an_outreach_channel_the_bot_is_invited_to_clears_on_every_replica_within_a_check(
    database_url: str, clock: FrozenClock
) -> None:
    """Invited at last, on a quiet night: /healthz stayed 503 until the next request's card
    went, hours later, and monitoring paged about a problem already mended. The check asks
    Slack (conversations.info, which posts nothing), and keeps its yes in the database: the
    other replica clears at its next check without asking again. A card refused after it is
    a problem again."""
    with (
        FakeSlack(outside={CHANNEL}) as fake,
        slack_bot(database_url, clock, fake) as bot,
        slack_bot(database_url, clock, fake) as other,
        serve(bot.http_app) as url,
        serve(other.http_app) as other_url,
    ):
        on_rota(bot.services.db, "outreach", "Alex Carter", "U01ALEX", clock.now())
        raise_review(services=bot.services, request=request(), by=NURSE)
        drain(bot.services, bot.senders)
        for replica in (bot, other):
            check_channels(replica.services, replica.senders)
        assert [healthz(u).json()["problems"] for u in (url, other_url)] == [[REFUSED]] * 2
        fake.invite(CHANNEL)
        posted = len(fake.called("chat.postMessage"))
        check_channels(bot.services, bot.senders)
        assert healthz(url).status_code == 200
        asked = len(fake.called("conversations.info"))
        check_channels(other.services, other.senders)
        assert healthz(other_url).status_code == 200
        assert len(fake.called("conversations.info")) == asked  # the database said so
        assert len(fake.called("chat.postMessage")) == posted  # no message shows for a check

        fake.outside.add(CHANNEL)  # removed again: a card refused after the yes is news
        raise_review(services=bot.services, request=request(), by=NURSE)
        drain(bot.services, bot.senders)
        for replica in (bot, other):
            check_channels(replica.services, replica.senders)
        assert [healthz(u).json()["problems"] for u in (url, other_url)] == [[REFUSED]] * 2


def test_the_cards_that_never_reached_the_channel_go_once_when_the_bot_is_invited(
    database_url: str, clock: FrozenClock
) -> None:
    """While the bot was not in the channel each card was refused, the managers were told of
    each, and that was all: the team never saw requests still waiting for them. Once it is
    invited, each open request's card goes, as the request stands now: once, however many
    replicas check; none for a request cancelled meanwhile."""
    with (
        FakeSlack(outside={CHANNEL}) as fake,
        slack_bot(database_url, clock, fake) as bot,
        slack_bot(database_url, clock, fake) as other,
    ):
        on_rota(bot.services.db, "outreach", "Alex Carter", "U01ALEX", clock.now())
        waiting, taken, withdrawn = (
            raise_review(services=bot.services, request=request(), by=NURSE).review_id
            for _ in range(3)
        )
        acknowledge(services=bot.services, review_id=taken, by=OUTREACH)
        cancel(services=bot.services, review_id=withdrawn, by=NURSE, reason="Raised in error")
        drain(bot.services, bot.senders)
        assert cards_shown(fake) == {}  # refused, each reported to the managers
        fake.invite(CHANNEL)
        for replica in (bot, other, bot, other):
            check_channels(replica.services, replica.senders)
            drain(replica.services, replica.senders)
        assert cards_shown(fake) == {
            format_reference(waiting): ["raised"],
            format_reference(taken): ["acknowledged"],
        }


def test_a_card_refused_again_after_the_invite_goes_when_the_bot_is_invited_once_more(
    database_url: str, clock: FrozenClock
) -> None:
    """Invited, then removed again before the re-sent card went (someone tidying the channel's
    members at 3 am), then invited back: the open request's card must still reach the team.
    The re-send was keyed once per request and platform, and any re-send, a refused one
    included, settled the request: it was never owed a card again. Now each refusal is
    answered by one re-send, once however many replicas check."""
    with (
        FakeSlack(outside={CHANNEL}) as fake,
        slack_bot(database_url, clock, fake) as bot,
        slack_bot(database_url, clock, fake) as other,
    ):
        on_rota(bot.services.db, "outreach", "Alex Carter", "U01ALEX", clock.now())
        review = raise_review(services=bot.services, request=request(), by=NURSE).review_id
        drain(bot.services, bot.senders)  # refused: not_in_channel
        fake.invite(CHANNEL)
        check_channels(bot.services, bot.senders)  # yes: the card is queued again
        fake.outside.add(CHANNEL)  # removed before it went
        drain(bot.services, bot.senders)  # the re-sent card is refused too
        fake.invite(CHANNEL)  # invited back for good
        for replica in (bot, other, bot, other):
            check_channels(replica.services, replica.senders)
            drain(replica.services, replica.senders)
        assert cards_in_channel(fake) == {format_reference(review): 1}


def test_a_card_posted_again_settles_the_refusals_before_it_not_those_after(
    database_url: str, clock: FrozenClock
) -> None:
    """A card posted again in the outreach channel of the time is not posted in the next one,
    as a card that went there first is not; a card refused there after it still is."""
    with FakeSlack(outside={"C0OLD"}) as fake:
        with slack_bot(database_url, clock, fake, channel="C0OLD") as before:
            on_rota(before.services.db, "outreach", "Alex Carter", "U01ALEX", clock.now())
            review = raise_review(services=before.services, request=request(), by=NURSE)
            drain(before.services, before.senders)  # refused
            fake.invite("C0OLD")
            check_channels(before.services, before.senders)
            drain(before.services, before.senders)  # posted again: the team sees it
        reference = format_reference(review.review_id)
        assert cards_in_channel(fake, "C0OLD") == {reference: 1}
        with slack_bot(database_url, clock, fake) as after:  # OUTREACH_CHANNEL changed
            for _ in range(2):
                check_channels(after.services, after.senders)
                drain(after.services, after.senders)
            assert cards_in_channel(fake) == {}
            with after.services.db.reading() as uow:  # so each check reads, and writes nothing
                assert uow.channels.cards_owed("slack", CHANNEL) == []
            fake.outside.add(CHANNEL)  # the bot removed from the new one
            acknowledge(services=after.services, review_id=review.review_id, by=OUTREACH)
            drain(after.services, after.senders)  # the card, updated, refused in the new one
            fake.invite(CHANNEL)
            for _ in range(2):
                check_channels(after.services, after.senders)
                drain(after.services, after.senders)
        assert cards_in_channel(fake) == {reference: 1}


def test_the_cards_owed_reach_a_corrected_outreach_channel_without_waiting_for_a_new_one(
    database_url: str, clock: FrozenClock
) -> None:
    """OUTREACH_CHANNEL named the wrong channel (the bot not in it): the night's cards were
    refused. IT corrects the setting and restarts. The check posted what was owed only once
    the channel's latest message went, and a channel nothing was ever sent to has none: the
    open requests' cards waited for the next request's card to go there, hours on a quiet
    night. Now they go at the next check."""
    with FakeSlack(outside={"C0WRONG"}) as fake:
        with slack_bot(database_url, clock, fake, channel="C0WRONG") as before:
            on_rota(before.services.db, "outreach", "Alex Carter", "U01ALEX", clock.now())
            review = raise_review(services=before.services, request=request(), by=NURSE)
            drain(before.services, before.senders)  # refused in the wrong channel
        with slack_bot(database_url, clock, fake) as after:  # OUTREACH_CHANNEL corrected
            for _ in range(2):
                check_channels(after.services, after.senders)
                drain(after.services, after.senders)
        assert cards_in_channel(fake) == {format_reference(review.review_id): 1}


def test_a_corrected_outreach_channel_the_bot_is_not_in_either_is_named_at_once(
    database_url: str, clock: FrozenClock
) -> None:
    """The corrected channel is one the bot was not invited to either. Its owed cards are
    posted without asking Slack first, so their refusal names the channel in /healthz at once
    (asked instead, Slack's no would have left /healthz silent, nothing having failed there);
    once the bot is invited, they go."""
    with FakeSlack(outside={"C0WRONG", CHANNEL}) as fake:
        with slack_bot(database_url, clock, fake, channel="C0WRONG") as before:
            on_rota(before.services.db, "outreach", "Alex Carter", "U01ALEX", clock.now())
            review = raise_review(services=before.services, request=request(), by=NURSE)
            drain(before.services, before.senders)
        with slack_bot(database_url, clock, fake) as after, serve(after.http_app) as url:
            check_channels(after.services, after.senders)  # nothing gone or failed there yet
            drain(after.services, after.senders)  # the owed card is refused
            check_channels(after.services, after.senders)
            assert healthz(url).json()["problems"] == [REFUSED]
            fake.invite(CHANNEL)
            for _ in range(2):
                check_channels(after.services, after.senders)
                drain(after.services, after.senders)
            assert healthz(url).status_code == 200
        assert cards_in_channel(fake) == {format_reference(review.review_id): 1}


def test_a_card_that_arrived_but_was_recorded_failed_is_not_posted_twice(
    database_url: str, clock: FrozenClock
) -> None:
    """Slack posted the card but its answer was lost (a 500 after it landed); the bot was then
    removed from the channel before the retry: the look (conversations.history) was refused
    not_in_channel, which cleared maybe_sent as though the bot had looked and found nothing,
    and the retry was refused for good. Invited back, the card was posted again: the channel
    showed it twice, the first copy with live buttons and a stale state for ever."""
    with FakeSlack() as fake, slack_bot(database_url, clock, fake) as bot:
        on_rota(bot.services.db, "outreach", "Alex Carter", "U01ALEX", clock.now())
        fake.fail("chat.postMessage", times=1, status=500, lands=True, channel=CHANNEL)
        review = raise_review(services=bot.services, request=request(), by=NURSE).review_id
        drain(bot.services, bot.senders)  # the card lands; its answer is a 500
        assert cards_in_channel(fake) == {format_reference(review): 1}
        fake.outside.add(CHANNEL)  # removed
        clock.advance(seconds=5)
        drain(bot.services, bot.senders)  # look refused, retry refused: failed for good
        fake.invite(CHANNEL)
        for _ in range(2):
            check_channels(bot.services, bot.senders)
            drain(bot.services, bot.senders)
        assert cards_in_channel(fake) == {format_reference(review): 1}


def cards_in_channel(fake: FakeSlack, channel: str = CHANNEL) -> dict[str, int]:
    """{reference: how many request cards for it `channel` shows}: what people see, a card
    whose answer was lost included."""
    shown: dict[str, int] = {}
    for message in fake.messages.get(channel, []):
        words = str(message.get("text", "")).split()
        if message.get("thread_ts") in (None, message["ts"]) and words[:2] == ["Rapid", "review"]:
            shown[words[2]] = shown.get(words[2], 0) + 1
    return shown


def cards_shown(fake: FakeSlack) -> dict[str, list[str]]:
    """{reference: the state each of its cards showed} of the request cards that appeared in
    the outreach channel."""
    shown: dict[str, list[str]] = {}
    for call in fake.called("chat.postMessage"):
        text = str(call.body.get("text", ""))
        if call.body.get("channel") != CHANNEL or not call.answer.get("ok"):
            continue
        if text.startswith("Rapid review "):
            [context] = [b for b in call.body["blocks"] if b["type"] == "context"]
            state = context["elements"][0]["text"].split("*")[1].lower()
            shown.setdefault(text.split()[2], []).append(state)
    return shown
