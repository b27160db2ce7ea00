"""The family's daily view, GET and POST /concern/WARD/today, over real HTTP on SQLite and
PostgreSQL: recorded as a check-in, "worse" offers an urgent review, a wish for one raises it
with the family's contact details, and the public pages' abuse rules hold."""

from __future__ import annotations

import re
from time import monotonic

import pytest
import requests
from sqlmodel import col, select

from reviews import service
from reviews.model import Outcome
from reviews.outbox import DeliveryError, drain
from storage.database import Database
from storage.tables import Checkin
from tests.support.builders import OUTREACH, RecordingSender, make_services, on_rota
from tests.support.clock import FrozenClock
from tests.support.databases import stalled
from tests.support.public_pages import PHONE, PublicPages, outbox, public_pages, stored
from tests.support.public_pages import send as send_request

VIEW = {"caller": "family", "answer": "same", "bed": "12", "worries": "", "wants_review": "no"}
CONTACT = {
    "your_name": "Jo Bloggs",
    "relationship": "daughter",
    "patient_name": "Ann Bloggs",
    "callback_number": "07700 900123",
}


def token(site: PublicPages, ward: str = "ward-7") -> str:
    page = requests.get(f"{site.url}/concern/{ward}/today", timeout=10)
    assert page.status_code == 200
    match = re.search(r'name="token" value="([^"]+)"', page.text)
    assert match
    return match[1]


def send(site: PublicPages, *, form_token: str | None = None, **changes: str):
    fields = {**VIEW, **changes, "token": form_token or token(site)}
    return requests.post(f"{site.url}/concern/ward-7/today", data=fields, timeout=10)


def checkins(site: PublicPages) -> list[Checkin]:
    with site.services.db.unit_of_work() as uow:
        return list(uow.session.exec(select(Checkin).order_by(col(Checkin.id))))


def test_the_daily_view_asks_the_question_and_works_without_script(site: PublicPages) -> None:
    page = requests.get(f"{site.url}/concern/ward-7/today", timeout=10)
    assert "Compared with yesterday, how are they feeling today?" in page.text
    assert "<script" not in page.text and PHONE in page.text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_a_relatives_view_is_recorded_as_the_wards_checkin(site: PublicPages) -> None:
    answer = send(site, worries="She ate a little breakfast")
    assert answer.status_code == 200 and "We have saved how they are today" in answer.text
    [checkin] = checkins(site)
    assert (checkin.ward, checkin.bed, checkin.respondent, checkin.answer, checkin.source) == (
        "Ward 7 (Acute Medicine)", "12", "family", "same", "web",
    )  # fmt: skip
    assert checkin.review_id is None and stored(site) == []


def test_worse_offers_an_urgent_review(site: PublicPages) -> None:
    answer = send(site, answer="worse")
    assert "You said they are worse than yesterday" in answer.text
    assert 'href="/concern/ward-7/review"' in answer.text
    assert stored(site) == []


def test_a_wish_for_review_raises_one_with_the_callers_details_once(site: PublicPages) -> None:
    form_token = token(site)
    for _ in range(2):  # a double tap on Send
        answer = send(site, form_token=form_token, answer="worse", wants_review="yes", **CONTACT)
        assert answer.status_code == 200 and "RR-0001" in answer.text
    assert "07700 900123" in answer.text and "/concern/status/" in answer.text
    [review] = stored(site)
    assert (review.source, review.caller, review.concern_kind) == ("checkin", "family", "untriaged")
    assert (review.caller_name, review.patient_name) == ("Jo Bloggs", "Ann Bloggs")
    assert review.callback_number == "07700900123"
    assert len(checkins(site)) == 1 and checkins(site)[0].review_id == review.id
    assert all("Bloggs" not in row.payload for row in outbox(site))
    [card] = [row for row in outbox(site) if row.kind == "card"]
    assert "Family, carer or advocate, from a daily check-in on the public page" in card.payload


def test_the_same_daily_view_sent_again_after_its_request_closed_raises_a_new_one(
    site: PublicPages, clock: FrozenClock
) -> None:
    """As the request form's: the team saw Mum and closed the request; an hour on the same
    "worse, review me now" page, sent again, showed the closed RR-0001 and raised nothing."""
    on_rota(site.services.db, "outreach", OUTREACH.name, OUTREACH.user_id, clock.now())
    form_token = token(site)
    assert (
        "RR-0001"
        in send(site, form_token=form_token, answer="worse", wants_review="yes", **CONTACT).text
    )
    clock.advance(minutes=40)
    service.record_outcome(
        services=site.services, review_id=1, by=OUTREACH, outcome=Outcome.NO_CHANGE
    )
    clock.advance(minutes=30)
    again = send(site, form_token=form_token, answer="worse", wants_review="yes", **CONTACT)
    assert "RR-0002" in again.text
    assert [r.state for r in stored(site)] == ["closed", "raised"] and len(checkins(site)) == 2


def test_mistakes_come_back_beside_their_fields_and_nothing_is_recorded(
    site: PublicPages,
) -> None:
    answer = send(site, caller="", answer="", wants_review="yes", worries="Kept as typed")
    assert answer.status_code == 400
    for message in (
        "Select if you are the patient, or family",
        "Select better, about the same, or worse",
        "Enter your name",
        "Enter a phone number we can call you on",
    ):
        assert message in answer.text
    assert "Kept as typed" in answer.text
    assert checkins(site) == [] and stored(site) == []


@pytest.mark.parametrize("form_token", ["", "ward-7.1.AAAAAAAAAAAAAAAA." + "0" * 64])
def test_a_missing_or_forged_token_records_nothing(site: PublicPages, form_token: str) -> None:
    answer = requests.post(
        f"{site.url}/concern/ward-7/today", data={**VIEW, "token": form_token}, timeout=10
    )
    assert answer.status_code == 403 and PHONE in answer.text
    assert checkins(site) == []


def test_more_than_five_an_hour_from_one_address_is_refused(site: PublicPages) -> None:
    for _ in range(5):
        assert send(site).status_code == 200
    refused = send(site)
    assert refused.status_code == 429 and PHONE in refused.text
    assert len(checkins(site)) == 5


def test_daily_views_never_use_up_the_urgent_requests_allowance(site: PublicPages) -> None:
    """Behind a hospital's guest Wi-Fi every visitor shares one address: five families' daily
    views in an hour must not refuse the next family's urgent request."""
    for _ in range(5):
        assert send(site).status_code == 200
    assert send(site).status_code == 429  # the daily views' own allowance is used up
    urgent = send_request(site)
    assert urgent.status_code == 200 and "RR-0001" in urgent.text
    # A daily view asking for a review now is a request: it has the requests' allowance.
    wish = send(site, answer="worse", wants_review="yes", **CONTACT)
    assert wish.status_code == 200 and "RR-0002" in wish.text


def test_an_unknown_ward_is_404(site: PublicPages) -> None:
    page = requests.get(f"{site.url}/concern/no-such-ward/today", timeout=10)
    assert page.status_code == 404 and PHONE in page.text


def test_worse_on_the_public_page_is_told_to_the_wards_channel(
    db: Database, clock: FrozenClock, tmp_path
) -> None:
    wards = tmp_path / "wards.toml"
    wards.write_text(
        '[[wards]]\ncode = "ward-7"\nname = "Ward 7"\nbeds = 28\nslack_channel = "C0WARD7"\n'
    )
    with public_pages(make_services(db, clock), wards_file=wards) as site:
        assert send(site, answer="worse", worries="She cried all night").status_code == 200
        assert send(site, answer="same").status_code == 200
        [told] = [row for row in outbox(site) if row.address == "C0WARD7"]
    assert "Ward 7 bed 12: their family says they are worse than yesterday" in told.payload
    assert "cried" not in told.payload  # never their words in a chat message


def test_worse_the_wards_channel_refuses_goes_to_the_outreach_channel_and_the_alarm_says_so(
    db: Database, clock: FrozenClock, tmp_path
) -> None:
    """A setup slip (the bot never invited to the ward's channel): Slack refuses the post for
    good. The family's "worse" is not lost: the outreach team's channel hears it, with why, to
    pass on; and the alarm in the digest channel says where it was going and what it was."""
    wards = tmp_path / "wards.toml"
    wards.write_text(
        '[[wards]]\ncode = "ward-7"\nname = "Ward 7"\nbeds = 28\nslack_channel = "C0WARD7"\n'
    )
    refused = DeliveryError("Slack refused: not_in_channel", permanent=True)
    slack = RecordingSender(failures=[refused], failing="C0WARD7")
    with public_pages(make_services(db, clock), wards_file=wards) as site:
        assert send(site, answer="worse").status_code == 200
        for _ in range(2):
            drain(site.services, {"slack": slack})
    assert [item.message.text for item in slack.to("C0WARD7")] == []
    [passed_on] = [item.message.text for item in slack.to("C0OUTREACH")]
    assert "Ward 7 bed 12: their family says they are worse than yesterday" in passed_on
    assert (
        "It could not be posted in the ward's channel: Slack refused: not_in_channel. "
        "Please tell the ward." in passed_on
    )
    [alarm] = [item.message.text for item in slack.to("C0DIGEST")]
    assert alarm == (
        'A channel message on slack to C0WARD7 (a public page\'s "worse" check-in) could not be '
        "delivered after 1 attempt: Slack refused: not_in_channel; it went to the outreach "
        "channel instead"
    )


def test_worse_for_a_ward_with_no_channel_is_told_to_the_outreach_channel(
    db: Database, clock: FrozenClock, tmp_path
) -> None:
    """A ward need not have a channel (wards.example.toml's Ward 12 has none): a family's
    "worse" then goes to the outreach team's channel to pass on, not nowhere."""
    wards = tmp_path / "wards.toml"
    wards.write_text('[[wards]]\ncode = "ward-7"\nname = "Ward 7"\nbeds = 28\n')
    with public_pages(make_services(db, clock), wards_file=wards) as site:
        assert send(site, answer="worse", worries="She cried all night").status_code == 200
        [told] = [row for row in outbox(site) if row.address == "C0OUTREACH"]
    assert "Ward 7 bed 12: their family says they are worse than yesterday" in told.payload
    assert "Ward 7 has no channel of its own: please tell the ward." in told.payload
    assert "cried" not in told.payload


def test_a_wish_for_review_a_stalled_database_holds_is_told_within_seconds_to_call(
    site: PublicPages,
) -> None:
    form = token(site)
    with stalled(site.services.db):
        started = monotonic()
        answer = send(site, form_token=form, answer="worse", wants_review="yes", **CONTACT)
        waited = monotonic() - started
    assert waited < 3.5, waited
    assert answer.status_code == 503 and PHONE in answer.text
    assert "We could not confirm that your request was sent: call us now" in answer.text
