"""Every inbound token failure is refused with 401 and changes nothing; good tokens pass.

Tokens are real RS256 JWTs signed by FakeMicrosoft's keys, checked by the real endpoint over
real HTTP against keys fetched from its OpenID metadata document.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import jwt
import pytest
from sqlmodel import select

from handlers.logs import Sparing
from handlers.teams.auth import (
    RETRY_AFTER_FAILURE,
    RETRY_BEFORE_FIRST_KEYS,
    TIMEOUT,
    WAIT_FOR_KEYS,
    KeysUnavailable,
    TokenVerifier,
    Unauthorized,
)
from reviews.notify import Route
from storage.database import Database
from storage.tables import Staff
from tests.support.builders import make_services
from tests.support.clock import FrozenClock
from tests.support.fake_microsoft import APP_ID, FakeMicrosoft, new_key
from tests.support.teams_activities import OUTREACH, TeamsBot, activity, person, teams_bot
from tests.support.waiting import eventually

NURSE = person("Wendy Ward", "0a0a0a0a-0000-4000-8000-000000000001")
ROUTES = (Route(platform="teams", outreach_channel=OUTREACH),)


@pytest.fixture
def bot(db: Database, clock: FrozenClock, ms: FakeMicrosoft) -> Iterator[TeamsBot]:
    with teams_bot(make_services(db, clock, routes=ROUTES), ms) as bot:
        yield bot


def nothing_happened(bot: TeamsBot) -> bool:
    with bot.services.db.unit_of_work() as uow:
        people = uow.session.exec(select(Staff)).all()
    return people == [] and bot.ms.connector_calls() == []


FORGED_KEY = new_key()
BAD_TOKENS: dict[str, Callable[[FakeMicrosoft], str | None]] = {
    "missing": lambda ms: None,
    "not a JWT": lambda ms: "not-a-jwt",
    "forged signature": lambda ms: ms.token(key=FORGED_KEY, kid=ms.keys[0].kid),
    "unknown key": lambda ms: ms.token(key=FORGED_KEY),
    "wrong audience": lambda ms: ms.token(audience="someone-elses-bot"),
    "wrong issuer": lambda ms: ms.token(issuer="https://sts.windows.net/evil/"),
    "expired beyond the skew": lambda ms: ms.token(expires_in=-301 - 5),
    "not valid yet beyond the skew": lambda ms: ms.token(not_before_in=301 + 5),
    "another service URL": lambda ms: ms.token(service_url="https://evil.example/"),
    "no service URL claim": lambda ms: ms.token(claim="unrelated"),
    "HMAC, not RSA": lambda ms: jwt.encode(
        {"iss": "https://api.botframework.com", "aud": APP_ID, "exp": 2**31},
        "x" * 32,
        algorithm="HS256",
        headers={"kid": ms.keys[0].kid},
    ),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_bad_tokens_are_refused_and_change_nothing(
    bot: TeamsBot, ms: FakeMicrosoft, case: str
) -> None:
    token = BAD_TOKENS[case](ms)
    response = bot.post(activity(ms, NURSE, text="rapidreview"), token=token, unsigned=True)
    assert response.status_code == 401
    assert nothing_happened(bot)


def test_a_flood_of_forged_requests_is_one_log_line_a_minute(
    bot: TeamsBot, ms: FakeMicrosoft, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(30):
        forged = ms.token(key=FORGED_KEY, kid=ms.keys[0].kid)
        response = bot.post(activity(ms, NURSE, text="rapidreview"), token=forged, unsigned=True)
        assert response.status_code == 401
    refused = [r.getMessage() for r in caplog.records if "Teams request refused" in r.getMessage()]
    assert len(refused) == 1 and "signature" in refused[0].lower(), refused
    assert nothing_happened(bot)


def test_a_flood_of_forgeries_does_not_hide_a_genuine_token_refused(
    bot: TeamsBot, ms: FakeMicrosoft, caplog: pytest.LogCaptureFixture
) -> None:
    # Microsoft signed it, but it expired 6 minutes ago: our clock is wrong, or it is replayed.
    # Either way the operator must hear of it, however many forgeries came first.
    for _ in range(30):
        forged = ms.token(key=FORGED_KEY, kid=ms.keys[0].kid)
        bot.post(activity(ms, NURSE, text="rapidreview"), token=forged, unsigned=True)
    for _ in range(5):
        expired = ms.token(expires_in=-306)
        response = bot.post(activity(ms, NURSE, text="rapidreview"), token=expired, unsigned=True)
        assert response.status_code == 401
    refused = [r.getMessage() for r in caplog.records if "Teams request refused" in r.getMessage()]
    assert len(refused) == 2, refused
    assert "signature" in refused[0].lower() and "expired" in refused[1].lower(), refused
    assert nothing_happened(bot)


def test_what_a_forged_token_says_of_itself_is_cut_short_in_the_log(
    bot: TeamsBot, ms: FakeMicrosoft, caplog: pytest.LogCaptureFixture
) -> None:
    forged = ms.token(key=FORGED_KEY, kid="k" * 8000)
    response = bot.post(activity(ms, NURSE, text="rapidreview"), token=forged, unsigned=True)
    assert response.status_code == 401
    [said] = [r.getMessage() for r in caplog.records if "Teams request refused" in r.getMessage()]
    assert "unknown signing key" in said and len(said) < 200, len(said)


def test_a_line_held_back_is_counted_in_the_next_one_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    sparing = Sparing(logging.getLogger("rapidreview.test"), every=60, monotonic=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        for second in range(0, 130, 2):  # one a second for over two minutes
            now[0] = second
            sparing.log(logging.WARNING, "refused: %s", f"#{second}")
    assert [r.getMessage() for r in caplog.records] == [
        "refused: #0",
        "refused: #60 (and 29 more like it in the last 60 s or longer)",
        "refused: #120 (and 29 more like it in the last 60 s or longer)",
    ]


def test_a_key_that_does_not_endorse_the_channel_is_refused(
    bot: TeamsBot, ms: FakeMicrosoft
) -> None:
    response = bot.post(activity(ms, NURSE, text="rapidreview", channelId="webchat"))
    assert response.status_code == 401
    assert nothing_happened(bot)


@pytest.mark.parametrize("claim", ["serviceurl", "serviceUrl"])
def test_either_spelling_of_the_service_url_claim_is_accepted(
    bot: TeamsBot, ms: FakeMicrosoft, claim: str
) -> None:
    # Real Bot Framework tokens spell it "serviceurl"; some documentation says "serviceUrl".
    response = bot.post(activity(ms, NURSE, text="help"), token=ms.token(claim=claim))
    assert response.status_code == 200
    assert len(ms.posts_to(f"a:personal-{NURSE.teams_id}")) == 1


def test_clock_skew_within_five_minutes_is_tolerated(bot: TeamsBot, ms: FakeMicrosoft) -> None:
    for token in (ms.token(expires_in=-240), ms.token(not_before_in=240)):
        assert bot.post(activity(ms, NURSE, text="help"), token=token).status_code == 200


def test_keys_unavailable_asks_the_bot_framework_to_retry(
    db: Database, clock: FrozenClock, ms: FakeMicrosoft
) -> None:
    with teams_bot(make_services(db, clock, routes=ROUTES), ms) as bot:
        bot.adapter.verifier.metadata_url = "https://127.0.0.1:9/nowhere"
        response = bot.post(activity(ms, NURSE, text="rapidreview"))
        assert response.status_code == 503
        assert nothing_happened(bot)


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def at_once(refresh: Callable[[], None]) -> None:
    """A key refresh run in the request that starts it, not in a thread of its own: for tests
    of when keys are fetched, which then need not wait for a thread."""
    refresh()


def test_keys_are_cached_refetched_daily_and_on_a_new_key_id(ms: FakeMicrosoft) -> None:
    ticks = Ticks()
    verifier = TokenVerifier(
        app_id=APP_ID,
        metadata_url=ms.metadata_url,
        http=ms.session(),
        monotonic=ticks,
        in_background=at_once,
    )
    seen = activity(ms, NURSE)
    for _ in range(3):
        verifier.verify(f"Bearer {ms.token()}", seen)
    assert ms.metadata_fetches == 1

    # Microsoft rotates its keys: a token with the new key id makes us fetch them again...
    ms.keys = [new_key()]
    with pytest.raises(Unauthorized):  # ...but not more often than once a minute
        verifier.verify(f"Bearer {ms.token()}", seen)
    assert ms.metadata_fetches == 1
    ticks.now += 61
    verifier.verify(f"Bearer {ms.token()}", seen)
    assert ms.metadata_fetches == 2

    ticks.now += 24 * 3600 + 1
    verifier.verify(f"Bearer {ms.token()}", seen)
    assert ms.metadata_fetches == 3


def test_teams_is_still_answered_while_the_daily_key_refresh_fails(
    bot: TeamsBot, ms: FakeMicrosoft
) -> None:
    ticks = Ticks()
    bot.adapter.verifier.monotonic = ticks
    bot.adapter.verifier.in_background = at_once
    assert bot.post(activity(ms, NURSE, text="help")).status_code == 200
    ms.keys_down = True
    ticks.now += 24 * 3600 + 1  # the cached key still signs Teams' tokens
    for _ in range(3):
        assert bot.post(activity(ms, NURSE, text="help")).status_code == 200
    assert len(ms.posts_to(f"a:personal-{NURSE.teams_id}")) == 4
    assert ms.metadata_fetches == 2  # the refresh was tried once, not once a request
    # A key we could not fetch: the Bot Framework is asked to retry, not told it is forged.
    unknown = bot.post(activity(ms, NURSE, text="help"), token=ms.token(key=new_key()))
    assert unknown.status_code == 503


def test_a_failed_key_refresh_is_logged_once_and_tried_again_five_minutes_later(
    ms: FakeMicrosoft, caplog: pytest.LogCaptureFixture
) -> None:
    ticks = Ticks()
    verifier = TokenVerifier(
        app_id=APP_ID,
        metadata_url=ms.metadata_url,
        http=ms.session(),
        monotonic=ticks,
        in_background=at_once,
    )
    seen = activity(ms, NURSE)
    verifier.verify(f"Bearer {ms.token()}", seen)
    ms.keys_down = True
    ticks.now += 24 * 3600 + 1
    for _ in range(3):
        verifier.verify(f"Bearer {ms.token()}", seen)
        ticks.now += 60
    assert ms.metadata_fetches == 2
    ticks.now += 120
    verifier.verify(f"Bearer {ms.token()}", seen)
    assert ms.metadata_fetches == 3
    assert caplog.text.count("could not be refreshed") == 1

    ms.keys_down = False
    ticks.now += 300
    verifier.verify(f"Bearer {ms.token()}", seen)
    ticks.now += 300
    verifier.verify(f"Bearer {ms.token()}", seen)
    assert ms.metadata_fetches == 4  # fresh again: the next refresh is a day away


def test_a_new_key_id_during_an_outage_asks_for_a_retry_without_fetching_each_time(
    ms: FakeMicrosoft,
) -> None:
    ticks = Ticks()
    verifier = TokenVerifier(
        app_id=APP_ID, metadata_url=ms.metadata_url, http=ms.session(), monotonic=ticks
    )
    seen = activity(ms, NURSE)
    verifier.verify(f"Bearer {ms.token()}", seen)
    ms.keys_down = True
    ticks.now += 61
    rotated = new_key()
    for _ in range(3):  # a key we cannot fetch (or a forger's): the endpoint answers 503
        with pytest.raises(KeysUnavailable):
            verifier.verify(f"Bearer {ms.token(key=rotated)}", seen)
    assert ms.metadata_fetches == 2
    verifier.verify(f"Bearer {ms.token()}", seen)  # the cached key still serves

    ms.keys_down = False
    ms.keys = [rotated]  # fetched once the back-off is over
    ticks.now += 300
    verifier.verify(f"Bearer {ms.token(key=rotated)}", seen)
    assert ms.metadata_fetches == 3


def test_a_refused_request_does_not_reach_the_database(ms: FakeMicrosoft) -> None:
    # No database at all: a forged request must be refused before anything is looked up.
    verifier = TokenVerifier(app_id=APP_ID, metadata_url=ms.metadata_url, http=ms.session())
    with pytest.raises(Unauthorized, match="audience|Audience"):
        verifier.verify(f"Bearer {ms.token(audience='other')}", activity(ms, NURSE))
    with pytest.raises(KeysUnavailable, match=r"no signing keys could be fetched \(HTTPError\)"):
        TokenVerifier(app_id=APP_ID, metadata_url=f"{ms.url}/missing", http=ms.session()).verify(
            f"Bearer {ms.token()}", activity(ms, NURSE)
        )


def test_a_known_key_is_served_at_once_while_a_slow_key_refresh_hangs(
    bot: TeamsBot, ms: FakeMicrosoft
) -> None:
    """login.botframework.com slow to answer the daily refresh: every Teams request waited
    behind the one refreshing, up to TIMEOUT for each of its fetches."""
    ticks = Ticks()
    bot.adapter.verifier.monotonic = ticks
    assert bot.post(activity(ms, NURSE, text="help")).status_code == 200
    ms.hold_keys()
    ticks.now += 24 * 3600 + 1  # the daily refresh is due
    for _ in range(3):
        started = time.monotonic()
        assert bot.post(activity(ms, NURSE, text="help")).status_code == 200
        assert time.monotonic() - started < TIMEOUT, "it waited for the key refresh"
    eventually(lambda: ms.keys_waiting == 1, "one refresh, hanging")
    assert len(ms.posts_to(f"a:personal-{NURSE.teams_id}")) == 4

    rotated = new_key()
    ms.keys = [*ms.keys, rotated]
    ms.release_keys()  # the refresh ends in the background, with the new key
    assert bot.post(activity(ms, NURSE, text="help"), token=ms.token(key=rotated)).ok
    assert ms.metadata_fetches == 2


def test_a_new_key_id_waits_for_the_refresh_under_way_but_not_for_long(
    bot: TeamsBot, ms: FakeMicrosoft
) -> None:
    ticks = Ticks()
    verifier = bot.adapter.verifier
    verifier.monotonic, verifier.wait_for_keys = ticks, 0.5
    assert bot.post(activity(ms, NURSE, text="help")).status_code == 200
    rotated = new_key()
    ms.keys = [*ms.keys, rotated]
    ms.hold_keys()
    ticks.now += 61  # a key id not seen yet is looked for
    started = time.monotonic()
    waited = bot.post(activity(ms, NURSE, text="help"), token=ms.token(key=rotated))
    assert waited.status_code == 503  # the Bot Framework retries
    assert time.monotonic() - started < TIMEOUT
    assert bot.post(activity(ms, NURSE, text="help")).status_code == 200  # a known key: at once

    verifier.wait_for_keys = WAIT_FOR_KEYS
    ms.release_keys()
    again = bot.post(activity(ms, NURSE, text="help"), token=ms.token(key=rotated))
    assert again.status_code == 200
    assert ms.metadata_fetches == 2  # the one refresh served both


def test_a_key_refresh_that_cannot_start_is_a_503_and_later_refreshes_still_run(
    bot: TeamsBot, ms: FakeMicrosoft, caplog: pytest.LogCaptureFixture
) -> None:
    """Thread.start() raised once (a process at its thread limit in a surge). The refresh
    stayed "under way" for ever: no refresh ran again, and every new key id Microsoft rotated
    to waited and got 503 for the life of the process, so Teams went dark."""
    ticks = Ticks()
    verifier = bot.adapter.verifier
    verifier.monotonic, verifier.wait_for_keys = ticks, 0.5
    starts: list[object] = []

    def cannot_start_the_second(refresh: Callable[[], None]) -> None:
        starts.append(refresh)
        if len(starts) == 2:
            raise RuntimeError("can't start new thread")
        refresh()

    verifier.in_background = cannot_start_the_second
    assert bot.post(activity(ms, NURSE, text="help")).status_code == 200
    ticks.now += 24 * 3600 + 1  # the daily refresh is due; its thread cannot start
    assert bot.post(activity(ms, NURSE, text="help")).status_code == 503  # retried, not a 500
    assert "a key refresh could not start (RuntimeError: can't start new thread)" in caplog.text
    assert bot.post(activity(ms, NURSE, text="help")).status_code == 200  # the cached key

    rotated = new_key()
    ms.keys = [*ms.keys, rotated]  # Microsoft rotates
    ticks.now += RETRY_AFTER_FAILURE
    answer = bot.post(activity(ms, NURSE, text="help"), token=ms.token(key=rotated))
    assert answer.status_code == 200
    assert len(starts) == 3 and ms.metadata_fetches == 2


def test_while_microsoft_is_down_at_first_start_a_token_is_not_a_fetch_each(
    bot: TeamsBot, ms: FakeMicrosoft
) -> None:
    """No keys fetched yet and login.botframework.com answering 503: every request with a
    well-formed RS256 header, forged by anyone on the internet, made the bot fetch the
    metadata. Each is still answered 503 at once (a genuine one is retried by the Bot
    Framework), and the keys are tried again a few seconds later."""
    ticks = Ticks()
    verifier = bot.adapter.verifier
    verifier.monotonic, verifier.in_background = ticks, at_once
    ms.keys_down = True
    forged = new_key()
    for _ in range(20):
        started = time.monotonic()
        answer = bot.post(activity(ms, NURSE, text="rapidreview"), token=ms.token(key=forged))
        assert answer.status_code == 503
        assert time.monotonic() - started < WAIT_FOR_KEYS
        ticks.now += 0.5
    assert ms.metadata_fetches == 1
    assert nothing_happened(bot)

    ms.keys_down = False  # Microsoft is back: Teams is answered within the back-off
    ticks.now += RETRY_BEFORE_FIRST_KEYS
    assert bot.post(activity(ms, NURSE, text="help")).status_code == 200
    assert ms.metadata_fetches == 2


WEBCHAT = "https://webchat.botframework.com/"


def test_a_validly_signed_web_chat_activity_cannot_act_as_a_rota_member(
    bot: TeamsBot, ms: FakeMicrosoft
) -> None:
    # Microsoft's real keys endorse Web Chat too, where the client names `from` itself.
    ms.keys = [new_key(endorsements=["msteams", "webchat"])]
    assert bot.post(activity(ms, NURSE, text="help")).status_code == 200
    stored = reference_of(bot, NURSE.aad_object_id)
    calls = len(ms.connector_calls())
    posing = activity(ms, NURSE, text="rapidreview", channelId="webchat", serviceUrl=WEBCHAT)
    response = bot.post(posing, token=ms.token(service_url=WEBCHAT))
    assert response.status_code == 403
    assert reference_of(bot, NURSE.aad_object_id) == stored
    assert len(ms.connector_calls()) == calls


@pytest.mark.parametrize("where", ["channelData", "conversation"])
def test_an_activity_from_another_tenant_is_refused(
    bot: TeamsBot, ms: FakeMicrosoft, where: str
) -> None:
    elsewhere = activity(ms, NURSE, text="rapidreview")
    if where == "channelData":
        elsewhere["channelData"] = {"tenant": {"id": "99999999-0000-4000-8000-000000000000"}}
    else:
        elsewhere["conversation"]["tenantId"] = "99999999-0000-4000-8000-000000000000"
    assert bot.post(elsewhere).status_code == 403
    assert nothing_happened(bot)


def reference_of(bot: TeamsBot, aad_object_id: str) -> str | None:
    with bot.services.db.unit_of_work() as uow:
        person = uow.rota.staff_by_platform_id("teams", aad_object_id)
        return person.teams_conversation if person else None


def test_another_bots_genuine_tokens_do_not_hide_ours_refused(
    bot: TeamsBot, ms: FakeMicrosoft, caplog: pytest.LogCaptureFixture
) -> None:
    # Anyone can register a bot of their own with Microsoft and be sent tokens Microsoft really
    # signed, for their app id: current ones, and, kept an hour, expired ones. A flood of those
    # must not keep out of the log that a token for THIS bot is refused as expired (our clock).
    for _ in range(15):
        theirs = ms.token(audience="another-bot-of-anyones")
        bot.post(activity(ms, NURSE, text="rapidreview"), token=theirs, unsigned=True)
        stale = ms.token(audience="another-bot-of-anyones", expires_in=-3600)
        bot.post(activity(ms, NURSE, text="rapidreview"), token=stale, unsigned=True)
    for _ in range(5):
        expired = ms.token(expires_in=-306)
        response = bot.post(activity(ms, NURSE, text="rapidreview"), token=expired, unsigned=True)
        assert response.status_code == 401
    refused = [r.getMessage() for r in caplog.records if "Teams request refused" in r.getMessage()]
    ours = [line for line in refused if "expired" in line.lower() and "more like it" not in line]
    assert ours, refused
    assert len(refused) <= 3, refused  # still at most a line a minute for each kind
    assert nothing_happened(bot)
