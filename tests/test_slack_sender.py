"""SlackSender against the fake Slack Web API: what each outbox kind calls, and how Slack's
failures become retries (429 with Retry-After, 5xx, network) or permanent failures."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
import urllib3
from slack_sdk import WebClient

from handlers.slack import SlackSender, lookup_slack_id
from handlers.slack.client import PooledWebClient
from handlers.slack.people import tell
from handlers.slack.sender import SCOPES
from reviews.digest import latest_day, post_digest
from reviews.messages import Attachment, Message
from reviews.outbox import WORKERS, DeliveryError, OutboundItem, drain
from reviews.service import raise_review
from reviews.wards import Ward, Wards
from storage.database import Database
from tests.support.builders import NURSE, make_services, request
from tests.support.clock import FrozenClock
from tests.support.fake_slack import Call, FakeSlack, shown
from tests.support.process import ROOT


@pytest.fixture
def sender(fake: FakeSlack) -> SlackSender:
    # The client bot.py builds, so every failure below goes through its pooled connections.
    return SlackSender(PooledWebClient(token="xoxb-test", base_url=fake.url))


def item(
    kind: str,
    address: str = "C0OUTREACH",
    card_id: str | None = None,
    message: Message | None = None,
) -> OutboundItem:
    return OutboundItem(
        kind=kind,
        address=address,
        message=message or Message(text="hello"),
        card_id=card_id,
        review_id=1,
    )


def test_messages_reuse_one_connection_to_slack(sender: SlackSender, fake: FakeSlack) -> None:
    for person in ("U01ALEX", "U01SAM", "U01IRIS", "U01MO"):
        sender.deliver(item("direct", address=person))
    fake.fail("chat.postMessage", status=429, retry_after=3)
    with pytest.raises(DeliveryError):
        sender.deliver(item("direct"))
    sender.deliver(item("direct"))
    # Against real Slack each new connection is a TLS handshake: six calls, one connection.
    assert len({call.connection for call in fake.calls}) == 1


def test_slack_is_reached_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.trust.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    through = PooledWebClient(token="xoxb-test", base_url="https://slack.com/api/").pool
    assert isinstance(through, urllib3.ProxyManager)
    assert through.proxy is not None and through.proxy.host == "proxy.trust.example"
    monkeypatch.setenv("NO_PROXY", "slack.com")
    direct = PooledWebClient(token="xoxb-test", base_url="https://slack.com/api/").pool
    assert not isinstance(direct, urllib3.ProxyManager)


def test_the_outbox_workers_share_the_clients_kept_alive_connections(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with FakeSlack(latency=0.1) as slow:  # as long as real Slack takes to answer
        sender = SlackSender(PooledWebClient(token="xoxb-test", base_url=slow.url))
        start = threading.Barrier(WORKERS)
        answers: list[str | None] = []

        def worker(person: str) -> None:
            start.wait()
            for _ in range(3):
                answers.append(sender.deliver(item("direct", address=person)))

        threads = [threading.Thread(target=worker, args=(f"U0{n}",)) for n in range(WORKERS)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        took = time.monotonic() - began
    assert len(set(answers)) == 3 * WORKERS and None not in answers
    # Side by side, not one after another (that would take 2.4 s), each worker on one
    # connection it keeps, and none opened only to be thrown away for want of room.
    assert took < 1.5
    assert len({call.connection for call in slow.calls}) <= WORKERS
    assert "Connection pool is full" not in caplog.text


def test_each_kind_goes_where_it_should(sender: SlackSender, fake: FakeSlack) -> None:
    card_id = sender.deliver(item("card"))
    assert card_id == f"C0OUTREACH:{fake.called('chat.postMessage')[0].answer['ts']}"
    assert sender.deliver(item("card_update", card_id=card_id)) == card_id
    [update] = fake.called("chat.update")
    assert (update.body["channel"], update.body["ts"]) == tuple(card_id.split(":"))
    sender.deliver(item("thread", card_id=card_id))
    assert fake.called("chat.postMessage")[-1].body["thread_ts"] == card_id.split(":")[1]
    reposted = sender.deliver(item("card_update", card_id=None))
    assert reposted != card_id and len(fake.called("chat.update")) == 1
    sender.deliver(item("direct", address="U01ALEX"))
    assert fake.called("chat.postMessage")[-1].body["channel"] == "U01ALEX"


def test_a_channel_post_uploads_its_chart(sender: SlackSender, fake: FakeSlack) -> None:
    chart = Attachment.of("digest.png", "Requests by hour", b"\x89PNG fake chart")
    sender.deliver(
        item(
            "channel",
            address="C0DIGEST",
            message=Message(text="Daily digest", attachments=(chart,)),
        )
    )
    assert not fake.called("chat.postMessage"), "the caption goes with the upload, once"
    [upload] = fake.called("upload")
    assert upload.body["_raw"] == b"\x89PNG fake chart"
    [complete] = fake.called("files.completeUploadExternal")
    assert complete.body["channel_id"] == "C0DIGEST"
    assert complete.body["files"][0]["title"] == "Requests by hour"
    assert complete.body["initial_comment"] == "Daily digest"


@pytest.mark.parametrize(
    ("failure", "retry_after", "permanent", "credentials"),
    [
        ({"status": 429, "retry_after": 7}, 7.0, False, False),
        ({"status": 503}, None, False, False),
        ({"status": 200, "error": "channel_not_found"}, None, True, False),
        ({"status": 200, "error": "token_revoked"}, None, False, True),
        ({"status": 200, "error": "invalid_auth"}, None, False, True),
        ({"status": 200, "error": "account_inactive"}, None, False, True),
    ],
)
def test_slack_failures_map_to_retries_or_give_up(
    sender: SlackSender,
    fake: FakeSlack,
    failure: dict,
    retry_after: float | None,
    permanent: bool,
    credentials: bool,
) -> None:
    fake.fail("chat.postMessage", **failure)
    with pytest.raises(DeliveryError) as raised:
        sender.deliver(item("card"))
    assert raised.value.retry_after == retry_after and raised.value.permanent is permanent
    assert raised.value.credentials is credentials


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 200, "page": "<html><body><h1>502 Bad Gateway</h1>The trust's proxy failed."},
        # Slack's own passing failures, answered as 200s (tests/test_drills.py drives the first
        # case through a real bot).
        {"status": 200, "error": "internal_error"},
        {"status": 200, "error": "fatal_error"},
        {"status": 200, "error": "service_unavailable"},
        {"status": 200, "error": "request_timeout"},
        # No "ok" and no error named: not Slack saying no (it names every refusal), so a
        # ping answered so had failed for good, unseen by anyone.
        {"status": 200, "said": {}},
    ],
    ids=[
        "html-page",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "no-ok",
    ],
)
def test_a_200_that_says_slack_failed_this_once_is_retried_after_a_look(
    sender: SlackSender, fake: FakeSlack, failure: dict
) -> None:
    """Not a refusal: tried again, and looked for first, since part of it may have been done."""
    fake.fail("chat.postMessage", **failure)
    with pytest.raises(DeliveryError) as raised:
        sender.deliver(item("card"))
    assert not raised.value.permanent and not raised.value.credentials
    assert raised.value.uncertain


def test_network_failure_is_a_retry() -> None:
    with FakeSlack() as gone:
        url = gone.url
    # No client-side retry: the outbox retries, and the test stays fast.
    sender = SlackSender(WebClient(token="xoxb-test", base_url=url, timeout=2, retry_handlers=[]))
    with pytest.raises(DeliveryError) as raised:
        sender.deliver(item("card"))
    assert not raised.value.permanent


def test_the_outbox_honours_retry_after_then_posts_the_card_once(
    db: Database, clock: FrozenClock, fake: FakeSlack, sender: SlackSender
) -> None:
    services = make_services(db, clock)
    raise_review(services=services, request=request(), by=NURSE)
    fake.fail("chat.postMessage", times=1, status=429, retry_after=30, channel="C0OUTREACH")
    drain(services, {"slack": sender})
    assert [c.answer["ok"] for c in cards(fake)] == [False]
    clock.advance(29)
    drain(services, {"slack": sender})
    assert len(cards(fake)) == 1, "nothing is sent again before Retry-After"
    clock.advance(2)
    drain(services, {"slack": sender})
    assert [c.answer["ok"] for c in cards(fake)] == [False, True]
    with db.unit_of_work() as uow:
        assert uow.outbox.card(1, "slack", "C0OUTREACH") is not None


def posted_digest(
    db: Database, clock: FrozenClock, fake: FakeSlack, sender: SlackSender, *, wards: int, open: int
) -> Call:
    """The digest Slack was sent for a trust of `wards` wards with `open` requests still open."""
    names = [f"Ward {n} (General Medicine)" for n in range(1, wards + 1)]
    listed = Wards(tuple(Ward(code=f"ward-{n}", name=name) for n, name in enumerate(names)))
    services = replace(make_services(db, clock), wards=listed)
    for name in names[:open]:
        raise_review(services=services, request=request(ward=name), by=NURSE)
    clock.advance(24 * 3600)
    assert post_digest(services, day=latest_day(services))
    drain(services, {"slack": sender})
    posts = fake.called("chat.postMessage")
    [digest] = [c for c in posts if c.body["text"].startswith("Rapid review digest")]
    assert digest.answer["ok"], digest.answer
    return digest


def test_a_long_digest_shows_in_slack_to_its_last_line(
    db: Database, clock: FrozenClock, fake: FakeSlack, sender: SlackSender
) -> None:
    # A trust of 40 wards, 15 requests still open: the open requests, listed last, are the
    # lines a manager most needs to read.
    digest = posted_digest(db, clock, fake, sender, wards=40, open=15)
    lines = str(digest.body["text"]).splitlines()
    assert len(digest.body["text"]) > 3000  # more than one of Slack's sections holds
    seen = shown(digest.body).splitlines()
    assert [line for line in lines if line not in seen] == []
    assert "Still open at" in "\n".join(seen)


def test_a_digest_too_long_for_one_slack_message_is_posted_cut_saying_where_to_read_it(
    db: Database, clock: FrozenClock, fake: FakeSlack, sender: SlackSender
) -> None:
    # Hundreds of wards: past what Slack takes in one message's blocks (msg_blocks_too_long).
    digest = posted_digest(db, clock, fake, sender, wards=400, open=1)
    seen = shown(digest.body).splitlines()
    assert seen[0] == digest.body["text"].splitlines()[0]
    assert "/rapidreview digest" in seen[-1]
    assert all(line in digest.body["text"] for line in seen[:-1])  # whole lines, none changed


def cards(fake: FakeSlack) -> list:
    return [
        c
        for c in fake.called("chat.postMessage")
        if c.body["channel"] == "C0OUTREACH" and c.body["text"].startswith("Rapid review")
    ]


def test_a_word_for_one_person_in_a_channel_without_the_bot_reaches_them_directly(
    fake: FakeSlack,
) -> None:
    fake.outside.add("C0WARD7")  # a button pressed on a card shared where the bot is not
    client = WebClient(token="xoxb-test", base_url=fake.url)
    tell(client, user_id="U01SAM", channel_id="C0WARD7", text="RR-0001 is already acknowledged")
    [refused] = fake.called("chat.postEphemeral")
    assert refused.answer["error"] == "not_in_channel"
    [direct] = fake.called("chat.postMessage")
    assert direct.body["channel"] == "U01SAM" and direct.answer["ok"]
    assert direct.body["text"] == "RR-0001 is already acknowledged"


def test_lookup_slack_id_by_email(fake: FakeSlack) -> None:
    fake.add_user("U01SAM", "Sam Patel", "sam.patel@nhs.net")
    lookup = lookup_slack_id(WebClient(token="xoxb-test", base_url=fake.url))
    assert lookup("sam.patel@nhs.net") == "U01SAM"
    assert lookup("nobody@nhs.net") is None


def test_slack_is_asked_whether_the_bot_may_post_only_about_a_refusal_an_invite_mends(
    sender: SlackSender, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """conversations.info (which posts nothing) for a channel the bot was not in; not for a
    message Slack could not take (posting restricted to admins), or /healthz would clear
    after each refusal. An app without the scopes to ask is told how to mend it, once."""
    not_in = "Slack refused: not_in_channel"
    fake.outside.add("C0OUTREACH")
    assert sender.can_post("C0OUTREACH", not_in) is False
    fake.invite("C0OUTREACH")
    assert sender.can_post("C0OUTREACH", not_in) is True
    assert sender.can_post("C0OUTREACH", "Slack refused: restricted_action") is None
    assert len(fake.called("conversations.info")) == 2
    fake.fail("conversations.info", status=200, error="channel_not_found")
    assert sender.can_post("G0PRIVATE", "Slack refused: channel_not_found") is False
    fake.fail("conversations.info", status=503)
    with pytest.raises(DeliveryError):
        sender.can_post("C0OUTREACH", not_in)
    fake.fail("conversations.info", times=2, status=200, error="missing_scope")
    assert [sender.can_post("C0OUTREACH", not_in) for _ in range(2)] == [None, None]
    told = [r.message for r in caplog.records if "missing_scope" in r.message]
    assert len(told) == 1 and "channels:read, groups:read" in told[0]


def test_an_app_lacking_the_manifests_scopes_is_told_once_what_each_costs(
    fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """An app upgraded by pasting manifest.yml but never reinstalled keeps its old scopes."""
    fake.scopes = [s for s in SCOPES if s not in ("channels:read", "groups:read")]
    sender = SlackSender(PooledWebClient(token="xoxb-test", base_url=fake.url))
    sender.check()
    sender.check()
    said = [r.getMessage() for r in caplog.records if "lacks" in r.getMessage()]
    assert len(said) == 1
    assert said[0].startswith("the Slack app lacks 2 of manifest.yml's scopes, so: without ")
    assert "channels:read, an outreach channel that refused the bot" in said[0]
    assert "reinstall it" in said[0]
    caplog.clear()
    fake.scopes = list(SCOPES)
    SlackSender(PooledWebClient(token="xoxb-test", base_url=fake.url)).check()
    assert not [r for r in caplog.records if "lacks" in r.getMessage()]


def test_the_scopes_checked_are_the_manifests() -> None:
    manifest = (ROOT / "manifest.yml").read_text()
    bot_scopes = manifest.split("    bot:\n", 1)[1].split("\nsettings:", 1)[0]
    listed = [line.strip()[2:] for line in bot_scopes.splitlines() if line.strip()[:2] == "- "]
    assert list(SCOPES) == listed
