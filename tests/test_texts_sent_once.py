"""A text GOV.UK Notify took whose answer never came back is not sent again.

A level with `sms = true` texts the backup's mobile through Notify. Each text's reference names
its outbox rows; when an attempt's answer is lost (the connection dropped, a 5xx, a timeout,
after Notify had taken it), the next attempt first reads Notify's newest texts for that
reference. Run through the real escalation, drain and Notify client against the fake Notify,
on SQLite and PostgreSQL; Slack is the recording sender.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import select

from handlers.pager.notify import NotifySender
from reviews import escalation, service
from reviews.context import Services
from reviews.messages import Message
from reviews.outbox import UNSEEN, OutboundItem, drain, outbox_tag
from reviews.policy import parse_policy
from storage.database import Database
from storage.tables import Outbox
from tests.support.builders import NURSE, RecordingSender, make_services, on_rota, request
from tests.support.clock import FrozenClock
from tests.support.fake_texts import NOTIFY_API_KEY, NOTIFY_TEMPLATE_ID, FakeNotify
from tests.support.waiting import eventually

SAM_MOBILE = "+447700900456"
POLICY = """
[[levels]]
after = "0s"
notify = ["outreach"]
[[levels]]
after = "5m"
notify = ["outreach-backup"]
sms = true
repeat_every = "24h"  # beyond the test: the ladder must repeat
[urgency.standard]
news2_at_least = 0
attend_within = "1h"
"""


@pytest.fixture
def services(db: Database, clock: FrozenClock) -> Services:
    start = clock.now() - timedelta(hours=1)
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", start, hours=24)
    on_rota(
        db,
        "outreach-backup",
        "Sam Patel",
        "U01SAM",
        start,
        hours=24,
        contact={"mobile": SAM_MOBILE},
    )
    policy = parse_policy(tomllib.loads(POLICY))
    return dataclasses.replace(make_services(db, clock, policy=policy), texting=("notify",))


def senders(notify: FakeNotify, *, timeout: float = 10) -> dict:
    notify_sender = NotifySender(
        NOTIFY_API_KEY, NOTIFY_TEMPLATE_ID, base_url=notify.url, timeout=timeout
    )
    return {"slack": RecordingSender(), "notify": notify_sender}


def text_sam(services: Services, clock: FrozenClock, notify: FakeNotify, **options) -> None:
    """Raise a request and let level 1 fall due: its text to Sam is the first to Notify."""
    service.raise_review(services=services, request=request(news2=""), by=NURSE)
    clock.advance(minutes=5)
    escalation.sweep(services)
    drain(services, senders(notify, **options))


def settle(services: Services, clock: FrozenClock, notify: FakeNotify, seconds: int = 60) -> None:
    clock.advance(seconds=seconds)
    drain(services, senders(notify))


def sams_texts(notify: FakeNotify) -> list[str]:
    return [text for number, text in notify.texts() if number == SAM_MOBILE]


def the_text_row(services: Services) -> Outbox:
    with services.db.unit_of_work() as uow:
        rows = uow.session.exec(select(Outbox).where(Outbox.platform == "notify")).all()
        assert len(rows) == 1
        return rows[0]


@pytest.mark.parametrize("status", [0, 502], ids=["connection-dropped", "notify-502"])
def test_a_text_notify_took_but_whose_answer_was_lost_is_sent_once(
    services: Services, clock: FrozenClock, notify: FakeNotify, status: int
) -> None:
    notify.fail(status=status, lands=True)
    text_sam(services, clock, notify)
    assert len(sams_texts(notify)) == 1 and the_text_row(services).state == "pending"
    settle(services, clock, notify)
    assert len(sams_texts(notify)) == 1, "the text was sent again after its answer was lost"
    assert "(escalation level 1)" in sams_texts(notify)[0]
    assert len(notify.listed()) == 1, "Notify's list was read once before sending again"
    row = the_text_row(services)
    assert (row.state, row.message_id) == ("sent", notify.taken[0]["id"])


def test_a_text_notify_never_took_is_looked_for_then_sent(
    services: Services, clock: FrozenClock, notify: FakeNotify
) -> None:
    notify.fail(status=502)  # refused, not taken
    text_sam(services, clock, notify)
    settle(services, clock, notify)
    assert len(notify.listed()) == 1
    assert len(sams_texts(notify)) == 1
    assert the_text_row(services).state == "sent"


def test_a_text_refused_outright_is_not_looked_for(
    services: Services, clock: FrozenClock, notify: FakeNotify
) -> None:
    notify.fail(status=429, retry_after=30)  # Notify took nothing: nothing to look for
    text_sam(services, clock, notify)
    settle(services, clock, notify)
    assert notify.listed() == [] and len(sams_texts(notify)) == 1


def test_a_text_notify_took_after_the_bot_stopped_waiting_is_found_not_sent_twice(
    services: Services, clock: FrozenClock, notify: FakeNotify
) -> None:
    """The sender gives up after its timeout (1.2 s here) but Notify takes the text a moment
    later: the next attempt waits that long again, so its look finds the text."""
    notify.fail(status=201, lands=True, hold=1.5)
    text_sam(services, clock, notify, timeout=1.2)
    assert the_text_row(services).maybe_sent
    clock.advance(seconds=1.1)  # past the first retry's usual 1 s, before the timeout's 1.2
    drain(services, senders(notify))
    assert notify.listed() == [], "tried again before the timeout had passed"
    eventually(lambda: len(notify.taken) == 1, "Notify took the text", 5)
    settle(services, clock, notify, seconds=1)
    assert len(sams_texts(notify)) == 1
    assert the_text_row(services).state == "sent"


def test_when_notify_will_not_show_its_texts_the_text_is_sent_again(
    services: Services, clock: FrozenClock, notify: FakeNotify, caplog: pytest.LogCaptureFixture
) -> None:
    notify.fail(status=502, lands=True)
    notify.fail(status=500, method="GET")
    text_sam(services, clock, notify)
    with caplog.at_level(logging.WARNING):
        settle(services, clock, notify)
    # Twice rather than never, and said.
    assert len(sams_texts(notify)) == 2
    assert "cannot see whether it already arrived (Notify 500 (Error: no)); sending it again" in (
        caplog.text
    )
    assert SAM_MOBILE not in caplog.text


def test_a_rate_limited_look_waits_as_notify_asks_but_never_long(
    services: Services, clock: FrozenClock, notify: FakeNotify
) -> None:
    notify.fail(status=502, lands=True)
    notify.fail(status=429, retry_after=3600, method="GET")
    text_sam(services, clock, notify)
    settle(services, clock, notify, seconds=1)  # the look: Notify asks for an hour
    assert len(sams_texts(notify)) == 1 and the_text_row(services).state == "pending"
    # The look only saves a duplicate: the ping waits 30 s at most, not the hour asked.
    settle(services, clock, notify, seconds=31)
    assert len(sams_texts(notify)) == 1
    assert the_text_row(services).state == "sent"
    assert len(notify.listed()) == 2


def test_the_look_asks_notify_for_this_texts_reference_only(
    services: Services, clock: FrozenClock, notify: FakeNotify
) -> None:
    """No other text's number or wording is read to find ours."""
    notify.fail(status=502, lands=True)
    text_sam(services, clock, notify)
    settle(services, clock, notify)
    sent_as = notify.taken[0]["reference"]
    assert sent_as == f"RR-0001 {outbox_tag(the_text_row(services))}"
    asked = parse_qs(urlsplit(notify.listed()[0].path).query)
    assert asked == {"reference": [sent_as], "template_type": ["sms"]}


def test_a_text_notify_took_but_could_not_deliver_goes_again(
    services: Services, clock: FrozenClock, notify: FakeNotify
) -> None:
    notify.fail(status=502, lands=True)
    text_sam(services, clock, notify)
    notify.taken[0]["status"] = "technical-failure"  # Notify's network could not deliver it
    settle(services, clock, notify)
    assert len(sams_texts(notify)) == 2
    assert the_text_row(services).message_id == notify.taken[1]["id"]


def test_a_text_another_database_tagged_alike_is_not_taken_for_ours(
    services: Services, clock: FrozenClock, notify: FakeNotify
) -> None:
    notify.fail(status=502)  # refused: the look must find nothing of ours
    text_sam(services, clock, notify)
    row = the_text_row(services)
    # A test bot on its own database, sharing the Notify service: the same row id and request
    # reference, queued at another moment.
    notify.taken.append(
        {
            "id": "00000000-0000-4000-8000-000000000001",
            "reference": f"RR-0001 {row.id}@1700000000000000",
            "phone_number": SAM_MOBILE,
            "type": "sms",
            "status": "delivered",
            "body": "another bot's text",
        }
    )
    settle(services, clock, notify)
    assert len(sams_texts(notify)) == 2  # the other bot's and ours
    assert the_text_row(services).message_id != "00000000-0000-4000-8000-000000000001"


def test_a_look_notify_breaks_off_keeps_what_it_found_and_marks_the_rest_unseen(
    notify: FakeNotify, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notify failed while the bot looked for the second of three texts: what was found of the
    first was dropped, and the third, never looked for, was taken for one looked for and not
    there (its maybe-sent flag cleared)."""
    sender = NotifySender(NOTIFY_API_KEY, NOTIFY_TEMPLATE_ID, base_url=notify.url)
    texts = [
        OutboundItem(
            kind="direct",
            address=SAM_MOBILE,
            message=Message(text=f"text {n}"),
            card_id=None,
            review_id=1,
            tags=(f"{n}@1700000000000000",),
        )
        for n in (1, 2, 3)
    ]
    taken = sender.deliver(texts[0])
    listing = sender.looker.get_all_notifications

    def then_failing(**query: object) -> object:
        answer = listing(**query)
        notify.fail(status=500, method="GET")  # the next look fails
        return answer

    monkeypatch.setattr(sender.looker, "get_all_notifications", then_failing)
    assert sender.arrived(texts) == {
        "1@1700000000000000": taken,
        "2@1700000000000000": UNSEEN,
        "3@1700000000000000": UNSEEN,
    }
