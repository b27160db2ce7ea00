"""Texts and pages to on-call staff, with a clock moved by hand, on SQLite and PostgreSQL.

The real senders (GOV.UK Notify's client, the signed gateway POST) talk to a fake Notify and a
fake paging gateway on loopback ports; Slack is the recording sender. Alex holds outreach with
a pager, Sam outreach-backup with only a mobile.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from datetime import date, timedelta

import pytest
from slack_sdk import WebClient

from handlers.pager.gateway import GatewaySender
from handlers.pager.notify import NotifySender
from handlers.slack import SlackSender
from reviews import escalation, service
from reviews.digest import digest_text
from reviews.model import FormErrors
from reviews.outbox import DeliveryError, drain
from reviews.policy import parse_policy
from tests.support.builders import (
    FILLED_FORM,
    NURSE,
    OUTREACH,
    RecordingSender,
    make_services,
    on_rota,
    request,
)
from tests.support.fake_slack import FakeSlack
from tests.support.fake_texts import (
    NOTIFY_API_KEY,
    NOTIFY_TEMPLATE_ID,
    PAGER_SECRET,
)
from tests.test_metrics import scrape

ALEX, SAM, DIGEST = "U01ALEX", "U01SAM", "C0DIGEST"
ALEX_PAGER, SAM_MOBILE = "BLEEP-2345", "+447700900456"
POLICY = """
[[levels]]
after = "0s"
notify = ["outreach"]
[[levels]]
after = "5m"
notify = ["outreach", "outreach-backup"]
repeat_every = "24h"  # beyond the test: the ladder must repeat
{sms}
[fallback]
after = "{fallback}"
[urgency.standard]
news2_at_least = 0
attend_within = "1h"
"""


@pytest.fixture
def slack():
    return SlackFailingAlex()


def ward(db, clock, sms: bool = False, fallback: str = "2m"):
    start = clock.now() - timedelta(hours=1)
    alex = on_rota(db, "outreach", "Alex Carter", ALEX, start, hours=24)
    sam = on_rota(db, "outreach-backup", "Sam Patel", SAM, start, hours=24)
    with db.unit_of_work() as uow:
        uow.rota.staff(alex.id).pager = ALEX_PAGER
        uow.rota.staff(sam.id).mobile = SAM_MOBILE
    toml = POLICY.format(sms="sms = true" if sms else "", fallback=fallback)
    policy = parse_policy(tomllib.loads(toml))
    services = make_services(db, clock, policy=policy)
    return dataclasses.replace(services, texting=("pager", "notify"))


@pytest.fixture
def services(db, clock):
    return ward(db, clock)


@pytest.fixture
def senders(slack, notify, pager):
    return {
        "slack": slack,
        "pager": GatewaySender(pager.url + "/page", PAGER_SECRET),
        "notify": NotifySender(NOTIFY_API_KEY, NOTIFY_TEMPLATE_ID, base_url=notify.url),
    }


@dataclasses.dataclass
class SlackFailingAlex(RecordingSender):
    """Slack, answering direct messages to Alex with the errors given, in turn."""

    alex_errors: list[DeliveryError] = dataclasses.field(default_factory=list)

    def deliver(self, item):
        if item.address == ALEX and self.alex_errors:
            raise self.alex_errors.pop(0)
        return super().deliver(item)


def texts_to(slack, address):
    return [item.message.text for item in slack.to(address)]


def tick(services, senders, clock, **advance):
    clock.advance(**advance)
    escalation.sweep(services)
    drain(services, senders)


def raise_one(services, senders):
    review = service.raise_review(services=services, request=request(news2=""), by=NURSE).review
    drain(services, senders)
    return review.id


def test_an_unacknowledged_direct_message_is_followed_by_a_page_after_the_fallback_delay(
    services, senders, clock, pager, notify
):
    raise_one(services, senders)
    tick(services, senders, clock, minutes=1, seconds=59)
    assert pager.pages() == []
    tick(services, senders, clock, seconds=1)
    assert [(p["to"], p["reference"], p["level"]) for p in pager.pages()] == [
        (ALEX_PAGER, "RR-0001", 0)
    ]
    tick(services, senders, clock, seconds=30)
    assert len(pager.pages()) == 1 and notify.texts() == []


def test_one_request_that_cannot_be_followed_up_holds_up_nobody_elses_page(
    services, senders, clock, pager, slack
):
    """A damaged request (as tests/test_escalation.py damages one) used to raise in every
    sweep before any other request's text was queued: nobody was paged, for anything."""
    broken = raise_one(services, senders)
    raise_one(services, senders)
    with services.db.unit_of_work() as uow:
        review = uow.reviews.get(broken)
        review.policy = review.policy.replace('"levels": [', '"levels": [7, ')
    tick(services, senders, clock, minutes=2)
    assert [(p["to"], p["reference"]) for p in pager.pages()] == [(ALEX_PAGER, "RR-0002")]
    told = [item.message.text for item in slack.to("C0DIGEST")]
    assert told == [
        "RR-0001 could not be followed by a text or page (TypeError); the bot keeps trying. Make "
        "sure the outreach team knows about it."
    ]


def test_the_text_says_where_and_how_urgent_and_never_who(services, senders, clock, pager):
    raise_one(services, senders)
    tick(services, senders, clock, minutes=2)
    text = pager.pages()[0]["text"]
    assert text == (
        "RR-0001 STANDARD rapid review, Ward 7 bed 12: NOT YET ACKNOWLEDGED. "
        "Acknowledge in Slack now."
    )
    for identifier in ("9990000018", "900123", "Mum", FILLED_FORM["concern"], "Alex", "Nurse"):
        assert identifier not in text


def test_a_long_ward_name_is_shortened_to_keep_one_sms(db, clock, senders, pager):
    services = ward(db, clock)
    long_ward = "Florence Nightingale Acute Medical Unit – East Wing, Level 4"  # 60, an en dash
    form = request(news2="", ward=long_ward, bed="Side room 14 bay C")
    service.raise_review(services=services, request=form, by=NURSE)
    drain(services, senders)
    tick(services, senders, clock, minutes=2)
    text = pager.pages()[0]["text"]
    assert len(text) <= 160 and text.isascii()
    assert re.fullmatch(
        r"RR-0001 STANDARD rapid review, Florence Nightingale Acute Medical Unit - [^–]+\. "
        r"bed Side room 14 bay C: NOT YET ACKNOWLEDGED\. Acknowledge in Slack now\.",
        text,
    )


def test_a_level_with_sms_pages_and_texts_its_holders_with_the_direct_message(
    db, clock, senders, pager, notify, slack
):
    services = ward(db, clock, sms=True)
    raise_one(services, senders)
    tick(services, senders, clock, minutes=2)  # level 0's fallback page
    tick(services, senders, clock, minutes=3)
    assert [(p["to"], p["level"]) for p in pager.pages()] == [(ALEX_PAGER, 0), (ALEX_PAGER, 1)]
    assert [number for number, _ in notify.texts()] == [SAM_MOBILE]
    assert "(escalation level 1)" in notify.texts()[0][1]
    assert notify.calls[0].body["template_id"] == NOTIFY_TEMPLATE_ID
    # The fallback for level 1's messages finds its texts already sent: nothing doubles.
    tick(services, senders, clock, minutes=3)
    assert [(p["to"], p["level"]) for p in pager.pages()] == [(ALEX_PAGER, 0), (ALEX_PAGER, 1)]
    assert len(notify.texts()) == 1


def test_a_call_back_to_the_earlier_levels_is_followed_by_a_page_like_any_ping(
    db, clock, senders, pager, slack
):
    """No site manager on the rota: the last level calls Alex back. Its direct message, keyed
    apart, could not be read by the follow-up, which failed every minute, and no page came."""
    services = ward(db, clock)
    policy = POLICY.format(sms="", fallback="2m").replace(
        'after = "5m"\nnotify = ["outreach", "outreach-backup"]',
        'after = "5m"\nnotify = ["site-manager"]',
    )
    services = dataclasses.replace(services, policy=parse_policy(tomllib.loads(policy)))
    raise_one(services, senders)
    tick(services, senders, clock, minutes=2)  # level 0's page
    tick(services, senders, clock, minutes=3)  # level 1: nobody, so Alex is called back
    assert texts_to(slack, ALEX)[-1].endswith("everyone on the earlier levels is called again.")
    tick(services, senders, clock, minutes=2)  # the call-back, unanswered for 2 minutes
    assert [(p["to"], p["level"]) for p in pager.pages()] == [(ALEX_PAGER, 0), (ALEX_PAGER, 1)]
    assert not [t for t in texts_to(slack, "C0DIGEST") if "could not be followed" in t]


def test_nothing_is_texted_after_an_acknowledge(services, senders, clock, pager, notify):
    review_id = raise_one(services, senders)
    clock.advance(minutes=1)
    service.acknowledge(services=services, review_id=review_id, by=OUTREACH)
    for _ in range(4):
        tick(services, senders, clock, minutes=2)
    assert pager.calls == [] and notify.calls == []


def test_a_page_queued_but_not_yet_sent_is_dropped_by_the_acknowledgement(
    services, senders, clock, pager
):
    review_id = raise_one(services, senders)
    pager.fail(times=1, status=503)
    tick(services, senders, clock, minutes=2)  # the page is queued, meets a 503, waits to retry
    service.acknowledge(services=services, review_id=review_id, by=OUTREACH)
    tick(services, senders, clock, minutes=1)
    assert [call.status for call in pager.calls] == [503]


def test_a_direct_message_that_failed_for_good_goes_as_a_page_at_once(
    services, senders, clock, pager, slack
):
    slack.alex_errors = [DeliveryError("Slack refused: user_not_found", permanent=True)]
    raise_one(services, senders)
    tick(services, senders, clock, seconds=0.5)
    assert [(p["to"], p["level"]) for p in pager.pages()] == [(ALEX_PAGER, 0)]
    tick(services, senders, clock, minutes=3)
    # Level 0 reached nobody, so level 1 was called at once (issue 11 finding 17) and pages
    # in its own right; level 0's page went once.
    assert [p["level"] for p in pager.pages()].count(0) == 1


def test_a_direct_message_not_sent_within_60_seconds_goes_as_a_page(
    services, senders, clock, pager, slack
):
    slack.alex_errors = [DeliveryError("rate limited", retry_after=300)] * 3
    raise_one(services, senders)
    tick(services, senders, clock, seconds=59)
    assert pager.pages() == []
    tick(services, senders, clock, seconds=1)
    assert [p["to"] for p in pager.pages()] == [ALEX_PAGER]


def test_the_fallback_is_timed_from_when_a_late_direct_message_went(db, clock, senders, pager):
    services = ward(db, clock, fallback="10s")
    senders["slack"].alex_errors = [DeliveryError("rate limited", retry_after=15)]
    raise_one(services, senders)
    tick(services, senders, clock, seconds=10)  # the first look: the message has not gone
    tick(services, senders, clock, seconds=5)  # it goes now, at 15 s
    tick(services, senders, clock, seconds=9)
    assert pager.pages() == []
    tick(services, senders, clock, seconds=1)  # 10 s after it went, not 60 s after it was due
    assert [p["to"] for p in pager.pages()] == [ALEX_PAGER]


def test_a_failing_page_is_retried_after_retry_after_then_sent_once(
    services, senders, clock, pager
):
    raise_one(services, senders)
    pager.fail(times=1, status=429, retry_after=30)
    tick(services, senders, clock, minutes=2)
    tick(services, senders, clock, seconds=29)
    assert [call.status for call in pager.calls] == [429]
    tick(services, senders, clock, seconds=1)
    assert [call.status for call in pager.calls] == [429, 201]


def test_a_page_the_gateway_refuses_is_reported_to_the_digest_channel(
    services, senders, clock, pager, slack
):
    raise_one(services, senders)
    pager.fail(times=1, status=400)
    tick(services, senders, clock, minutes=2)
    tick(services, senders, clock, minutes=1)
    assert [call.status for call in pager.calls] == [400]
    reports = [item.message.text for item in slack.to(DIGEST)]
    assert reports == [
        "A text message on pager about RR-0001 could not be delivered after 1 attempt: "
        "paging gateway refused the page (400)"
    ]
    assert ALEX_PAGER not in reports[0]


def test_with_nothing_configured_nothing_is_texted(db, clock, slack, pager):
    services = dataclasses.replace(ward(db, clock), texting=())
    raise_one(services, {"slack": slack})
    tick(services, {"slack": slack}, clock, minutes=10)
    assert pager.calls == []


def test_the_digest_counts_texts_and_pages_sent_and_failed(services, senders, clock, pager):
    raise_one(services, senders)
    tick(services, senders, clock, minutes=2)  # RR-0001's page goes
    raise_one(services, senders)
    pager.fail(times=1, status=400)
    tick(services, senders, clock, minutes=2)  # RR-0002's page is refused
    clock.advance(days=1)  # the next morning, when that day's digest is posted
    text = digest_text(services, day=date(2026, 12, 2))
    assert "  Texts and pages to on-call staff: 1 sent (0.0), 1 failed (0.0)" in text


def test_a_dead_slack_token_still_reaches_the_bleep_holders_pager(services, clock, pager, notify):
    with FakeSlack() as fake:
        fake.fail("chat.postMessage", times=100, status=200, error="token_revoked")
        senders = {
            "slack": SlackSender(WebClient(token="xoxb-revoked", base_url=fake.url)),
            "pager": GatewaySender(pager.url + "/page", PAGER_SECRET),
        }
        raise_one(services, senders)
        tick(services, senders, clock, seconds=59)
        assert pager.pages() == []
        tick(services, senders, clock, seconds=1)
        assert [(p["to"], p["reference"], p["level"]) for p in pager.pages()] == [
            (ALEX_PAGER, "RR-0001", 0)
        ]


def test_metrics_count_texts_and_pages_sent_and_failed(services, senders, clock, pager, notify):
    raise_one(services, senders)
    tick(services, senders, clock, minutes=2)  # RR-0001: Alex paged
    raise_one(services, senders)
    pager.fail(times=1, status=400)
    tick(services, senders, clock, minutes=2)  # RR-0002: the page is refused
    figures = scrape(services)
    assert figures[("rapidreview_texts_sent_total", (("via", "pager"),))] == 1
    assert figures[("rapidreview_texts_failed_total", (("via", "pager"),))] == 1
    assert figures[("rapidreview_texts_sent_total", (("via", "notify"),))] == 0


@pytest.mark.parametrize("via", ["notify", "pager"])
def test_a_refused_notify_key_or_gateway_secret_holds_texts_and_raises_the_alarm(
    db, clock, senders, notify, pager, slack, via
):
    """A revoked Notify key (403) or a gateway refusing our signature (401) failed each text
    for good, one line each in the digest channel, while /healthz said all was well: no monitor
    called IT in the night, and once the key was mended the texts never went."""
    services = ward(db, clock, sms=True)
    refused = dict(senders)
    if via == "notify":
        wrong_key = NOTIFY_API_KEY[:-4] + "0000"
        refused["notify"] = NotifySender(wrong_key, NOTIFY_TEMPLATE_ID, base_url=notify.url)
    else:
        pager.fail(times=1000, status=401)
    raise_one(services, refused)
    tick(services, refused, clock, minutes=2)  # level 0's fallback page to Alex
    tick(services, refused, clock, minutes=3)  # level 1: pages Alex, texts Sam
    for _ in range(3):
        tick(services, refused, clock, seconds=30)
    [problem] = services.health.problems()
    assert problem.startswith(f"{via} refuses the bot's credentials")
    alarms = [t for t in texts_to(slack, DIGEST) if "refuses the bot's credentials" in t]
    assert len(alarms) == 1 and "bleep the outreach team" in alarms[0]
    with db.unit_of_work() as uow:
        assert uow.outbox.count_by_state().get("failed", 0) == 0
    # IT mends the key (or the gateway's secret): what was held goes, once.
    pager.failures.clear()
    for _ in range(3):
        tick(services, senders, clock, seconds=30)
    if via == "notify":
        assert [number for number, _ in notify.texts()] == [SAM_MOBILE]
    else:
        assert [(p["to"], p["level"]) for p in pager.pages()] == [(ALEX_PAGER, 0), (ALEX_PAGER, 1)]
    assert services.health.problems() == []


@pytest.mark.parametrize(
    ("box", "typed"),
    [
        ("bed", "999 000 0018"),
        ("bed", "12 9990000018"),
        ("ward", "Ward 7 07700 900123"),
        ("bed", "999  000  0018"),  # two spaces, as a phone's keyboard gives after a full stop
        ("bed", "999.000.0018"),
        ("bed", "(07700) 900123"),
        ("ward", "Ward 7 +44 7700 900123"),
    ],
)
def test_an_nhs_or_phone_number_typed_in_the_ward_or_bed_box_never_reaches_a_pager(box, typed):
    """The ward and bed go in every text and page; a patient's NHS number typed in the Bed box
    went onto the bleep-holder's lock screen. The form now says where it belongs."""
    with pytest.raises(FormErrors) as refused:
        request(news2="", **{box: typed})
    assert "NHS or phone number" in refused.value.errors[box]
    for bed in ("12", "Side room 14 bay C", "Bay 2/5", "Room 2.14", "Bed 123456"):
        assert request(news2="", bed=bed).bed == bed
