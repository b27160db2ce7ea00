"""A request from the public page: once per form, a few an hour per address, never lost
silently, its status link, and the names going only to whoever takes it. Real HTTP, SQLite
and PostgreSQL."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from time import monotonic

import pytest
import requests
from sqlmodel import select

from reviews import service
from reviews.errors import NotAllowed
from reviews.model import Outcome
from reviews.public import public_actor
from storage.database import Database
from storage.tables import Review
from tests.support.builders import OUTREACH, make_services, on_rota
from tests.support.clock import FrozenClock
from tests.support.databases import stalled
from tests.support.public_pages import (
    FAMILY_FORM,
    PHONE,
    PublicPages,
    form_token,
    outbox,
    public_pages,
    send,
    status_link,
    stored,
)
from tests.support.tcp_proxy import TcpProxy
from tests.support.together import at_once
from tests.test_public_checkin import CONTACT
from tests.test_public_checkin import send as public_checkin
from tests.test_slack_forms import dead_database


@pytest.fixture
def site(db: Database, clock: FrozenClock) -> Iterator[PublicPages]:
    on_rota(db, "outreach", OUTREACH.name, OUTREACH.user_id, clock.now() - timedelta(hours=1))
    with public_pages(make_services(db, clock)) as site:
        yield site


def test_a_double_tapped_send_raises_one_request(site: PublicPages) -> None:
    token = form_token(site)
    answers = at_once(*[lambda: send(site, token=token)] * 3)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all("RR-0001" in a.text for a in answers)
    assert len(stored(site)) == 1
    assert send(site, token=token).status_code == 200 and len(stored(site)) == 1  # a reload


def test_the_same_form_sent_again_after_its_request_closed_raises_a_new_one(
    site: PublicPages, clock: FrozenClock
) -> None:
    """The phone still shows the form; the outreach team saw Mum and closed the request; an
    hour later she is worse and her son presses Send again. He was told "the team has been
    told" with the closed request's reference, and nothing was raised."""
    token = form_token(site)
    assert "RR-0001" in send(site, token=token).text
    clock.advance(minutes=40)
    service.record_outcome(
        services=site.services, review_id=1, by=OUTREACH, outcome=Outcome.NO_CHANGE
    )
    clock.advance(minutes=30)
    again = send(site, token=token)
    assert again.status_code == 200 and "RR-0002" in again.text
    assert [r.state for r in stored(site)] == ["closed", "raised"]
    reloaded = send(site, token=token)  # a double tap on the new one still counts once
    assert "RR-0002" in reloaded.text and len(stored(site)) == 2


def test_two_relatives_at_once_raise_two(site: PublicPages) -> None:
    first, second = form_token(site), form_token(site)
    answers = at_once(lambda: send(site, token=first), lambda: send(site, token=second))
    assert [a.status_code for a in answers] == [200, 200]
    assert len(stored(site)) == 2


def test_more_than_five_an_hour_from_one_address_records_nothing(
    site: PublicPages, clock: FrozenClock
) -> None:
    one = {"X-Forwarded-For": "203.0.113.7"}  # the address the trusted proxy saw
    for _ in range(5):
        assert send(site, headers=one).status_code == 200
    sixth = send(site, headers=one)
    assert sixth.status_code == 429
    assert "NOT sent" in sixth.text and PHONE in sixth.text
    assert len(stored(site)) == 5
    assert send(site, headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 200
    clock.advance(hours=1, seconds=1)
    assert send(site, headers=one).status_code == 200
    assert len(stored(site)) == 7


def test_an_untrusted_client_cannot_dodge_the_limit_with_a_forwarded_header(
    db: Database, clock: FrozenClock
) -> None:
    with public_pages(make_services(db, clock), forwarded_allow_ips="") as site:
        for number in range(5):
            assert send(site, headers={"X-Forwarded-For": f"198.51.100.{number}"}).ok
        refused = send(site, headers={"X-Forwarded-For": "198.51.100.99"})
        assert refused.status_code == 429


def test_behind_any_proxy_the_visitor_cannot_name_their_own_address(
    db: Database, clock: FrozenClock
) -> None:
    # FORWARDED_ALLOW_IPS=* (the proxy's address unknown or changing: a cloud load balancer).
    # The proxy appends the address it saw (nginx's $proxy_add_x_forwarded_for, Azure
    # Application Gateway, AWS ALB) to whatever X-Forwarded-For the visitor sent themselves.
    with public_pages(make_services(db, clock), forwarded_allow_ips="*") as site:
        for number in range(5):
            written = {"X-Forwarded-For": f"198.51.100.{number}, 203.0.113.7"}
            assert send(site, headers=written).ok
        refused = send(site, headers={"X-Forwarded-For": "198.51.100.99, 203.0.113.7"})
        assert refused.status_code == 429 and PHONE in refused.text
        # Another visitor, with the port some proxies add, and one the proxy alone names.
        assert send(site, headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.8:50123"}).ok
        assert send(site, headers={"X-Forwarded-For": "[2001:db8:1:2::5]:443"}).ok
    assert len(stored(site)) == 7


def test_behind_two_proxies_each_family_is_counted_once_both_are_named(
    db: Database, clock: FrozenClock
) -> None:
    # A content network's edge (192.0.2.0/24) in front of the trust's own load balancer (the
    # bot's peer here): X-Forwarded-For reads "visitor, edge". With "*" the last address is the
    # edge's, shared by every family it carries, and a sixth family in the hour is refused.
    chain = [{"X-Forwarded-For": f"198.51.100.{n}, 192.0.2.10"} for n in range(7)]
    with public_pages(make_services(db, clock), forwarded_allow_ips="*") as site:
        assert [send(site, headers=family).status_code for family in chain[:6]] == [200] * 5 + [429]
    clock.advance(hours=2)
    # Named, both proxies are passed over and each family is its own address.
    named = "127.0.0.1,192.0.2.0/24"
    with public_pages(make_services(db, clock), forwarded_allow_ips=named) as site:
        assert [send(site, headers=family).status_code for family in chain] == [200] * 7


def test_database_down_says_not_sent_and_to_call_now(
    db: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    with public_pages(make_services(db, clock)) as site:
        token = form_token(site)  # the form loaded while the database answered
        site.services.db.engine.dispose()
        dead = dataclasses.replace(site.services, db=dead_database(db, tmp_path))
    with public_pages(dead) as down:
        form = requests.get(down.url + "/concern/ward-7/review", timeout=10)
        for answer in (send(down, token=token), form):
            assert answer.status_code == 503
            assert PHONE in answer.text
        assert "Your request was NOT sent: call us now" in send(down, token=token).text


def test_a_stalled_database_tells_the_family_within_seconds_to_call(
    db: Database, clock: FrozenClock
) -> None:
    # A database slow to commit (a stuck transaction holding the request's table): the family
    # is not left watching a page load for 5 to 30 seconds, and is never told the team knows.
    with public_pages(make_services(db, clock)) as site:
        token = form_token(site)
        with stalled(db):
            started = monotonic()
            answer = send(site, token=token)
            waited = monotonic() - started
    assert waited < 3.5, waited
    assert answer.status_code == 503
    assert "We could not confirm that your request was sent: call us now" in answer.text
    assert PHONE in answer.text and "The critical care outreach team has been" not in answer.text


@contextlib.contextmanager
def cut_off_later(database_url: str) -> Iterator[tuple[Database, Callable[[], None]]]:
    """A database and a cut() that takes it away from the bot mid-test: PostgreSQL behind a
    proxy that drops every connection; SQLite's file replaced by a folder it cannot open. The
    database is back (and whole) when the block ends."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        db = Database(database_url)

        def cut() -> None:
            db.dispose()
            path.rename(path.with_suffix(".away"))
            path.mkdir()

        try:
            yield db, cut
        finally:
            db.dispose()
            if path.is_dir():
                path.rmdir()
                path.with_suffix(".away").rename(path)
        return
    with TcpProxy("127.0.0.1", 5432) as proxy:
        db = Database(database_url.replace(":5432/", f":{proxy.port}/"))
        try:
            yield db, proxy.cut
        finally:
            db.dispose()


def test_a_database_lost_while_the_form_was_open_says_not_sent_and_to_call_now(
    database_url: str, clock: FrozenClock
) -> None:
    # The page that served the form holds its signing key: only the request's own transaction
    # meets the database gone, and the family must hear it was NOT sent.
    with cut_off_later(database_url) as (db, cut):
        with public_pages(make_services(db, clock)) as site:
            token = form_token(site)
            cut()
            answer = send(site, token=token)
        assert answer.status_code == 503
        assert "Your request was NOT sent: call us now" in answer.text and PHONE in answer.text
        assert "RR-0" not in answer.text
    whole = Database(database_url)
    with whole.unit_of_work() as uow:
        assert uow.session.exec(select(Review)).all() == []
    whole.dispose()


def test_the_status_page_of_a_hung_database_says_so_within_seconds(
    postgres_url: str, clock: FrozenClock
) -> None:
    """The server takes connections and never answers: a family refreshing the status link
    waited for as long as it hung, each refresh holding one of the server's threads (which
    Slack's requests and /healthz need too). Now the page says it cannot be shown just now."""
    with TcpProxy("127.0.0.1", 5432) as proxy:
        db = Database(postgres_url.replace(":5432/", f":{proxy.port}/"))
        try:
            with public_pages(make_services(db, clock)) as site:
                link = status_link(send(site))
                assert requests.get(link, timeout=10).status_code == 200
                proxy.freeze()
                for _ in range(2):  # a worried relative refreshing
                    started = monotonic()
                    page = requests.get(link, timeout=15)
                    assert monotonic() - started < 8
                    assert page.status_code == 503
                    assert "We cannot show this page just now" in page.text and PHONE in page.text
                proxy.thaw()
                assert requests.get(link, timeout=10).status_code == 200
        finally:
            proxy.thaw()
            db.dispose()


def test_while_slack_cannot_be_reached_the_family_is_asked_to_phone_as_well(
    site: PublicPages, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The page never says the team has been told when the bot knows its messages are not
    getting through (a revoked token, Slack down): the request is recorded all the same, and
    the person is asked to phone now as well, on the answer and on the status page until the
    team has seen it."""
    delayed = "Our messages to the outreach team are not getting through right now"
    before = send(site)
    assert "The critical care outreach team has been told" in before.text
    assert delayed not in before.text

    health = site.services.health
    health.credentials_refused("slack", "Slack refused the token", retry_at=clock.now())
    answer = send(site)
    assert answer.status_code == 200 and "RR-0002" in answer.text  # recorded all the same
    assert delayed in answer.text and PHONE in answer.text
    assert "has been told" not in answer.text
    link = status_link(answer)
    assert delayed in requests.get(link, timeout=10).text
    service.acknowledge(services=site.services, review_id=2, by=OUTREACH)  # seen, by the bleep
    assert delayed not in requests.get(link, timeout=10).text
    wish = public_checkin(site, answer="worse", wants_review="yes", **CONTACT)
    assert "RR-0003" in wish.text and delayed in wish.text
    assert "for ward-7 is recorded while no chat platform can be reached" in caplog.text

    health.platform_ok("slack")
    assert delayed not in send(site).text
    health.unreachable("slack", "network: URLError")  # Slack down, not refusing: the same
    assert delayed in send(site).text
    assert len(stored(site)) == 5


def test_the_status_page_gives_the_wards_own_phone_line(
    db: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    """A family checking from home needs a number to call: the ward's own line, when the
    wards file gives one and there is no trust-wide CONCERN_PHONE."""
    wards = tmp_path / "wards.toml"
    wards.write_text(
        '[[wards]]\ncode = "ward-7"\nname = "Ward 7"\nbeds = 28\nphone = "01632 960 077"\n'
    )
    with public_pages(make_services(db, clock), wards_file=wards, concern_phone="") as site:
        page = requests.get(status_link(send(site)), timeout=10)
    assert page.status_code == 200 and "01632 960 077" in page.text
    assert "Ward 7" not in page.text  # it still names no ward


def test_the_status_page_follows_the_request_with_times_only(
    site: PublicPages, clock: FrozenClock
) -> None:
    link = status_link(send(site))
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    assert "We received your request" in page.text and "09:00" in page.text
    assert page.text.count("Not yet") == 3
    clock.advance(minutes=4)
    service.acknowledge(services=site.services, review_id=1, by=OUTREACH)
    clock.advance(minutes=10)
    service.attend(services=site.services, review_id=1, by=OUTREACH)
    clock.advance(minutes=30)
    service.record_outcome(
        services=site.services, review_id=1, by=OUTREACH, outcome=Outcome.CHANGE_IN_CARE
    )
    shown = requests.get(link, timeout=10).text
    for line, time in [
        ("The outreach team has seen it", "09:04"),
        ("A nurse is on the way or with the patient", "09:14"),
        ("The review is finished", "09:44"),
    ]:
        assert line in shown and time in shown
    for never in ("Alex Carter", "Change in care", "Mum is not making sense", "Bloggs", "07700"):
        assert never not in shown
    clock.advance(days=7)
    assert requests.get(link, timeout=10).status_code == 200
    clock.advance(minutes=1)
    gone = requests.get(link, timeout=10)
    assert gone.status_code == 404 and "stopped working" in gone.text and PHONE in gone.text


def test_a_cancelled_request_shows_closed_without_a_reason(site: PublicPages) -> None:
    link = status_link(send(site))
    service.cancel(services=site.services, review_id=1, by=OUTREACH, reason="Raised twice")
    page = requests.get(link, timeout=10).text
    assert "Closed without a review" in page and "Raised twice" not in page
    assert "Not yet" not in page


def test_a_made_up_status_link_is_404(site: PublicPages) -> None:
    for token in ("A" * 32, "..%2F", "x"):
        assert requests.get(f"{site.url}/concern/status/{token}", timeout=10).status_code == 404


def test_names_and_number_go_privately_to_whoever_takes_it_first(site: PublicPages) -> None:
    send(site)
    service.acknowledge(services=site.services, review_id=1, by=OUTREACH)
    direct = [r for r in outbox(site) if r.kind == "direct" and "call back" in r.payload]
    assert [(r.address, r.platform) for r in direct] == [(OUTREACH.user_id, "slack")]
    text = json.loads(direct[0].payload)["text"]
    assert text == (
        "RR-0001: call back on 07700900123 (Jo Bloggs, daughter). Patient: Ann Bloggs. "
        "They have spoken to the ward."
    )
    others = [r.payload for r in outbox(site) if r.id != direct[0].id]
    assert not any("Bloggs" in p or "07700900123" in p for p in others)
    # Nobody is sent anything on "web": there is no chat to tell the relative in.
    assert all(r.platform == "slack" for r in outbox(site))


def test_nothing_typed_on_the_page_is_logged(
    site: PublicPages, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    send(site)
    send(site, your_name="", concern="Dad keeps falling asleep mid sentence")
    send(site, token="forged", concern="Dad keeps falling asleep mid sentence")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "RR-0001 raised from the public page" in logged
    typed = [*FAMILY_FORM.values(), "07700900123", "Dad keeps falling asleep"]
    for value in typed:
        if len(value) > 3:
            assert value not in logged


def test_two_replicas_agree_on_forms_and_on_the_hourly_count(
    db: Database, clock: FrozenClock, database_url: str
) -> None:
    one = {"X-Forwarded-For": "203.0.113.9"}
    other_replica = make_services(Database(database_url), clock)
    with public_pages(make_services(db, clock)) as a, public_pages(other_replica) as b:
        assert send(b, token=form_token(a), headers=one).status_code == 200
        for site in (a, b, a, b):
            assert send(site, headers=one).status_code == 200
        assert send(b, headers=one).status_code == 429
        assert send(a, headers=one).status_code == 429
    assert len(stored(a)) == 5
    other_replica.db.dispose()


def test_the_public_page_may_raise_but_never_take_or_finish_a_request(site: PublicPages) -> None:
    send(site)
    [review] = stored(site)
    raiser = public_actor(review.submission_key or "")
    stranger = public_actor("web:someone-else")
    for by in (raiser, stranger):
        for act in (service.acknowledge, service.attend):
            with pytest.raises(NotAllowed):
                act(services=site.services, review_id=1, by=by)
    with pytest.raises(NotAllowed):
        service.cancel(services=site.services, review_id=1, by=stranger, reason="not mine")
    assert stored(site)[0].state == "raised"
