"""The public pages for patients and families, over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
import requests

from bot import build, say_wards_without_a_phone
from handlers.web import MAX_BODY
from settings import Settings
from storage.database import Database
from tests.support.builders import make_services
from tests.support.clock import FrozenClock
from tests.support.public_pages import (
    PHONE,
    PublicPages,
    form_token,
    outbox,
    public_pages,
    send,
    stored,
)


def get(site: PublicPages, path: str) -> requests.Response:
    return requests.get(site.url + path, timeout=10)


def assert_secure(response: requests.Response) -> None:
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_choose_your_ward_lists_only_the_wards_of_the_file(site: PublicPages) -> None:
    page = get(site, "/concern")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert_secure(page)
    for code, name in [("ward-7", "Ward 7 (Acute Medicine)"), ("cedar", "Cedar Ward (Surgery)")]:
        assert f'href="/concern/{code}"' in page.text and name in page.text
    assert "<script" not in page.text and "http" not in page.text.split("<body>")[1]


def test_the_ward_page_offers_an_urgent_review_and_the_daily_view(site: PublicPages) -> None:
    page = get(site, "/concern/ward-7")
    assert page.status_code == 200
    assert_secure(page)
    assert "Ask for an urgent review now" in page.text
    assert 'href="/concern/ward-7/review"' in page.text
    assert 'href="/concern/ward-7/today"' in page.text
    assert PHONE in page.text


def test_an_unknown_ward_is_404_with_the_phone_line(site: PublicPages) -> None:
    page = get(site, "/concern/ward-99")
    assert page.status_code == 404
    assert_secure(page)
    assert "We cannot find that ward" in page.text and PHONE in page.text


def test_the_stylesheet_is_our_own_and_nothing_comes_from_another_site(site: PublicPages) -> None:
    page = get(site, "/concern")
    assert '<link rel="stylesheet" href="/concern-style.css">' in page.text
    css = get(site, "/concern-style.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert_secure(css)
    assert "url(" not in css.text and "@import" not in css.text


def test_a_body_over_the_limit_is_refused_with_the_phone_line(site: PublicPages) -> None:
    answer = requests.post(
        site.url + "/concern/ward-7/review", data={"concern": "x" * MAX_BODY}, timeout=10
    )
    assert answer.status_code == 413
    assert_secure(answer)
    assert "NOT sent" in answer.text and PHONE in answer.text


def test_a_form_at_every_limit_in_any_script_is_taken(site: PublicPages) -> None:
    """A concern in Chinese is 9 bytes a character once the browser encodes it; a character
    outside the Basic Multilingual Plane (here one used in Japanese names), 12."""
    wide = "\U00020bb7"
    answer = send(
        site,
        your_name=wide * 100,
        relationship=wide * 60,
        patient_name=wide * 100,
        bed=wide * 20,
        concern=wide * 2000,
    )
    assert answer.status_code == 200 and "RR-0001" in answer.text
    chinese = send(site, concern=("我妈妈说话不清楚，比早上更困了。" * 125)[:2000])
    assert chinese.status_code == 200 and "RR-0002" in chinese.text
    [_, review] = stored(site)
    assert review.concern.startswith("我妈妈说话不清楚")

    too_long = send(site, concern=wide * 2001)  # the form's own limit counts characters
    assert too_long.status_code == 400
    assert "Use 2,000 characters or fewer (you used 2,001)" in too_long.text


def test_a_relative_asks_and_the_outreach_team_is_told(site: PublicPages) -> None:
    answer = send(site)
    assert answer.status_code == 200
    assert_secure(answer)
    assert "RR-0001" in answer.text and "07700 900123" in answer.text
    assert "emergency call bell" in answer.text and PHONE in answer.text
    assert f"{site.url}/concern/status/" in answer.text
    [review] = stored(site)
    assert (review.source, review.caller, review.concern_kind) == ("web", "family", "untriaged")
    assert review.urgency == "urgent"  # a worried relative, no NEWS2: the policy's band
    assert review.ward == "Ward 7 (Acute Medicine)" and review.bed == "12"
    assert (review.caller_name, review.patient_name, review.relationship) == (
        "Jo Bloggs",
        "Ann Bloggs",
        "daughter",
    )
    assert review.spoken_to_ward is True and review.callback_number == "07700900123"
    cards = [row for row in outbox(site) if row.kind == "card"]
    assert len(cards) == 1
    card = json.loads(cards[0].payload)
    assert card["review"]["caller"] == "Family, carer or advocate, from the public page"
    assert card["review"]["concern_kind"] == "Raised by patient or family (not yet triaged)"
    for secret in ("Bloggs", "07700900123", "07700 900123"):
        assert all(secret not in row.payload for row in outbox(site))


def test_mistakes_come_back_on_their_fields_with_what_was_typed_kept(site: PublicPages) -> None:
    answer = send(
        site, your_name="", callback_number="0123", concern="<b>Dad</b> is very breathless"
    )
    assert answer.status_code == 400
    assert_secure(answer)
    assert "There is a problem" in answer.text
    assert '<a href="#your_name">Enter your name</a>' in answer.text
    assert '<a href="#callback_number">Enter a UK phone number, like 07700 900 982</a>' in (
        answer.text
    )
    assert 'id="your_name-error"' in answer.text and 'aria-invalid="true"' in answer.text
    # What was typed is kept, and shown as text, never as markup.
    assert "&lt;b&gt;Dad&lt;/b&gt; is very breathless</textarea>" in answer.text
    assert 'value="0123"' in answer.text and 'value="daughter"' in answer.text
    assert 'value="family" checked' in answer.text
    assert stored(site) == []


@pytest.mark.parametrize(
    "token",
    ["", "ward-7.1.AAAAAAAAAAAAAAAA." + "0" * 64, "not-a-token"],
    ids=["missing", "forged", "malformed"],
)
def test_a_missing_or_forged_token_records_nothing(site: PublicPages, token: str) -> None:
    answer = send(site, token=token)
    assert answer.status_code == 403
    assert_secure(answer)
    assert "NOT sent" in answer.text and PHONE in answer.text
    assert stored(site) == []


def test_a_token_for_another_ward_records_nothing(site: PublicPages) -> None:
    answer = send(site, "ward-7", token=form_token(site, "cedar"))
    assert answer.status_code == 403 and stored(site) == []


def test_an_expired_form_records_nothing_and_keeps_what_was_typed(
    site: PublicPages, clock: FrozenClock
) -> None:
    token = form_token(site)
    clock.advance(hours=2, minutes=1)
    answer = send(site, token=token)
    assert answer.status_code == 403
    assert "open for over 2 hours, so it was not sent" in answer.text
    assert "Mum is not making sense" in answer.text and PHONE in answer.text
    assert stored(site) == []
    fresh = answer.text.split('name="token" value="')[1].split('"')[0]
    assert fresh != token and send(site, token=fresh).status_code == 200


def test_an_unknown_ward_records_nothing(site: PublicPages) -> None:
    answer = send(site, "ward-99", token="x")
    assert answer.status_code == 404 and PHONE in answer.text
    assert requests.get(site.url + "/concern/ward-99/review", timeout=10).status_code == 404
    assert stored(site) == []


def test_the_status_link_uses_the_public_address(db: Database, clock: FrozenClock) -> None:
    public = "https://concern.example.nhs.uk"
    with public_pages(make_services(db, clock), public_url=public) as site:
        answer = send(site)
    assert f'href="{public}/concern/status/' in answer.text


def test_without_any_phone_line_the_pages_say_whom_to_ask_and_start_up_warns(
    db: Database, clock: FrozenClock, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    """CONCERN_PHONE is optional and a ward's own phone too: with neither, a page that cannot
    take a request never says "call us" with no number; it says to ask ward staff, and the
    bot says at start which wards have no line."""
    wards = tmp_path / "wards.toml"
    wards.write_text('[[wards]]\ncode = "ward-9"\nname = "Ward 9"\nbeds = 10\n')
    with public_pages(make_services(db, clock), wards_file=wards, concern_phone="") as site:
        forged = requests.post(
            f"{site.url}/concern/ward-9/review", data={"token": "forged"}, timeout=10
        )
    assert forged.status_code == 403
    assert "call us" not in forged.text.lower()
    assert "Ask any member of staff on the ward to call the critical care outreach team" in (
        forged.text
    )

    settings = Settings(database_url=db.url, wards_file=wards)
    say_wards_without_a_phone(build(settings, clock=clock, listening=False))
    assert "CONCERN_PHONE is not set, and these wards have no phone of their own: ward-9" in (
        caplog.text
    )
    caplog.clear()
    settings = Settings(database_url=db.url, wards_file=wards, concern_phone="01632 960 001")
    say_wards_without_a_phone(build(settings, clock=clock, listening=False))
    assert "CONCERN_PHONE" not in caplog.text
