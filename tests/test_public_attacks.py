"""The public pages under attack, and under the muddles of a shared phone or a ward tablet:
each test is a hole found by trying it on the real HTTP server (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from storage.database import Database
from tests.support.builders import make_services
from tests.support.clock import FrozenClock
from tests.support.public_pages import (
    FAMILY_FORM,
    PHONE,
    PublicPages,
    form_token,
    outbox,
    public_pages,
    send,
    stored,
)

SOMEONE_ELSE: dict[str, Any] = {
    "your_name": "Sam Other",
    "patient_name": "Lee Other",
    "bed": "4",
    "concern": "Dad has a new pain in his chest and is sweating",
    "callback_number": "07700 900777",
}


def digits(page: requests.Response) -> str:
    return re.sub(r"\s", "", page.text)


def test_a_second_person_on_the_same_loaded_form_raises_their_own_request(
    site: PublicPages,
) -> None:
    # A ward tablet: one relative sends, the next presses Back and sends their own worry.
    token = form_token(site)
    first = send(site, token=token)
    second = send(site, token=token, **SOMEONE_ELSE)
    assert first.status_code == second.status_code == 200
    assert "RR-0001" in first.text and "RR-0002" in second.text
    assert "07700900123" not in digits(second)  # never the first relative's number
    assert [review.concern for review in stored(site)] == [
        FAMILY_FORM["concern"],
        SOMEONE_ELSE["concern"],
    ]
    assert "RR-0002" in send(site, token=token, **SOMEONE_ELSE).text  # their double tap
    assert len(stored(site)) == 2


def test_a_second_person_on_the_same_daily_view_is_recorded_too(site: PublicPages) -> None:
    page = requests.get(f"{site.url}/concern/ward-7/today", timeout=10)
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token
    wish = {"caller": "family", "answer": "worse", "wants_review": "yes", **FAMILY_FORM}
    first = requests.post(
        f"{site.url}/concern/ward-7/today", data={**wish, "token": token[1]}, timeout=10
    )
    second = requests.post(
        f"{site.url}/concern/ward-7/today",
        data={**wish, **SOMEONE_ELSE, "token": token[1]},
        timeout=10,
    )
    assert first.status_code == second.status_code == 200
    assert "RR-0001" in first.text and "RR-0002" in second.text
    assert "07700900123" not in digits(second)
    assert len(stored(site)) == 2


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/concern/ward-7/nothing-here"),
        ("GET", "/concern/ward-7/review/extra"),
        ("PUT", "/concern/ward-7/review"),
        ("POST", "/concern/ward-7"),
        ("DELETE", "/concern"),
    ],
)
def test_a_wrong_address_or_method_gets_a_page_with_the_phone_line(
    site: PublicPages, method: str, path: str
) -> None:
    answer = requests.request(method, site.url + path, timeout=10)
    assert answer.status_code in (404, 405)
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert PHONE in answer.text and "Nothing was sent" in answer.text


def test_a_trailing_slash_never_redirects_to_the_host_the_client_named(site: PublicPages) -> None:
    # Starlette's slash redirect builds its address from the Host header, which anyone can set.
    answer = requests.get(
        site.url + "/concern/ward-7/review/",
        headers={"Host": "evil.example"},
        allow_redirects=False,
        timeout=10,
    )
    assert "evil.example" not in answer.headers.get("Location", "")
    assert answer.status_code == 404 and PHONE in answer.text


def test_one_ipv6_connection_cannot_dodge_the_limit_by_changing_its_address(
    site: PublicPages,
) -> None:
    # Anyone on IPv6 holds a /64 of addresses; each must not count as a new visitor.
    for host in range(1, 6):
        assert send(site, headers={"X-Forwarded-For": f"2001:db8:1:2::{host}"}).ok
    refused = send(site, headers={"X-Forwarded-For": "2001:db8:1:2:ffff::99"})
    assert refused.status_code == 429 and PHONE in refused.text
    assert send(site, headers={"X-Forwarded-For": "2001:db8:1:3::1"}).ok  # another household
    assert len(stored(site)) == 6


def test_a_phone_number_typed_in_full_width_digits_is_taken(site: PublicPages) -> None:
    # Some phone keyboards (Japanese, Chinese) type full-width digits.
    answer = send(site, callback_number="０７７００ ９００１２３")
    assert answer.status_code == 200, re.findall(r"Error:</span>([^<]*)", answer.text)
    assert [review.callback_number for review in stored(site)] == ["07700900123"]


@pytest.mark.parametrize(
    "number",
    # Ofcom's premium-rate drama range, then made-up numbers in the other charged ranges (the
    # form refuses them, so they are never stored, dialled or texted).
    ["09098 790123", "+44 9098 790123", "070 0090 0123", "0871 0900 123", "0844 0900 123"],
)
def test_a_call_back_number_that_charges_the_caller_is_refused(
    site: PublicPages, number: str
) -> None:
    # The outreach team dials the call-back number: a premium one is toll fraud in its name.
    answer = send(site, callback_number=number)
    assert answer.status_code == 400 and "We cannot call 09, 070, 084 or 087 numbers" in answer.text
    assert f'value="{number}"' in answer.text  # what was typed is kept
    assert stored(site) == []


def test_a_file_in_place_of_a_field_is_refused_as_a_form_we_cannot_read(site: PublicPages) -> None:
    url = f"{site.url}/concern/ward-7/review"
    fields = {name: (None, value) for name, value in FAMILY_FORM.items()}
    with_a_file: dict[str, Any] = {
        **fields,
        "concern": ("worry.txt", b"Mum is not making sense", "text/plain"),
    }
    answer = requests.post(
        url, files={**with_a_file, "token": (None, form_token(site))}, timeout=10
    )
    assert answer.status_code == 400
    assert "We could not read that form" in answer.text and PHONE in answer.text
    assert stored(site) == []
    # The same form sent as multipart text is read as any other.
    answer = requests.post(url, files={**fields, "token": (None, form_token(site))}, timeout=10)
    assert answer.status_code == 200 and "RR-0001" in answer.text


def test_a_form_posted_from_another_site_is_refused_and_records_nothing(
    site: PublicPages,
) -> None:
    # A page elsewhere (an advert on the hospital's guest Wi-Fi) fetches a fresh form token on
    # its own server and has each visitor's browser post a made-up request with it: every
    # visitor's own address, so no hourly limit holds, and the Wi-Fi's allowance is used up.
    token = form_token(site)
    forged = {"your_name": "Not Real", "concern": "Made up by another site"}
    browsers = [
        {"Sec-Fetch-Site": "cross-site", "Origin": "null"},  # a browser of today
        {"Sec-Fetch-Site": "same-site", "Origin": "https://advert.example.nhs.uk"},
        {"Origin": "https://advert.example"},  # an older browser, without Sec-Fetch-Site
    ]
    for headers in browsers:
        answer = send(site, token=token, headers=headers, **forged)
        assert answer.status_code == 403, headers
        assert "Nothing was sent" in answer.text and PHONE in answer.text
    wish = {"caller": "family", "answer": "worse", "wants_review": "yes", **FAMILY_FORM}
    page = requests.get(f"{site.url}/concern/ward-7/today", timeout=10)
    today_token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert today_token
    answer = requests.post(
        f"{site.url}/concern/ward-7/today",
        data={**wish, "token": today_token[1]},
        headers=browsers[0],
        timeout=10,
    )
    assert answer.status_code == 403 and PHONE in answer.text
    assert stored(site) == []
    # The form sent from its own page is taken, whatever the browser says of its origin (a
    # POST from a page with Referrer-Policy: no-referrer carries "Origin: null").
    ours = [
        {"Sec-Fetch-Site": "same-origin", "Origin": "null"},
        {"Origin": site.url},
        {},
    ]
    for number, headers in enumerate(ours):
        answer = send(site, token=token, headers=headers, bed=str(number + 1))
        assert answer.status_code == 200, headers
    assert len(stored(site)) == 3


def test_a_web_address_typed_as_the_bed_never_reaches_a_text_or_a_channel(
    site: PublicPages,
) -> None:
    # The bed is the one thing a stranger types that goes into the texts and pages to on-call
    # staff (from the trust's own sender: "RR-0042 URGENT rapid review, Ward 7 bed
    # nhs-login.co/x: NOT YET ACKNOWLEDGED"), and onto the cards in the outreach and ward
    # channels, where phones and chat make a link of it.
    for bed in ("nhs-login.co/x", "https://x.example", "reset@nhs.example", "bit.ly/abc"):
        assert_refused_on_both_forms(site, bed, "Use letters, numbers and spaces only")
    assert stored(site) == [] and outbox(site) == []
    for bed in ("12", "Side room 3", "Bay 2/5", "12A", "Gwely 4 (ffenestr)"):
        assert send(site, bed=bed).status_code == 200, bed
    assert [review.bed for review in stored(site)][-1] == "Gwely 4 (ffenestr)"


def test_a_phone_or_nhs_number_typed_as_the_bed_never_reaches_a_text_or_a_channel(
    site: PublicPages,
) -> None:
    # A relative asked for the bed may give their own number or the patient's NHS number, which
    # would go into the texts and pages to on-call staff and onto the channels' cards.
    for bed in ("07700 900123", "999 000 0018", "(07700) 900123", "Bed 4 9990000018"):
        assert_refused_on_both_forms(site, bed, "not a phone or NHS number")
    assert stored(site) == [] and outbox(site) == []


def assert_refused_on_both_forms(site: PublicPages, bed: str, says: str) -> None:
    """`bed` comes back beside the field, saying `says`, on the request form and on the daily
    view whether or not a review is asked for; on the request form it is kept, to put right."""
    answer = send(site, bed=bed)
    assert answer.status_code == 400, bed
    assert says in answer.text
    assert f'value="{bed}"' in answer.text
    page = requests.get(f"{site.url}/concern/ward-7/today", timeout=10)
    today_token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert today_token
    for wish in ("yes", "no"):
        view = {"caller": "family", "answer": "worse", "wants_review": wish, "bed": bed}
        answer = requests.post(
            f"{site.url}/concern/ward-7/today",
            data={**FAMILY_FORM, **view, "token": today_token[1]},
            timeout=10,
        )
        assert answer.status_code == 400, (bed, wish)
        assert says in answer.text


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("+44 (0)7700 900123", "+447700900123"),  # how UK numbers are printed for abroad
        ("+44 0 7700 900124", "+447700900124"),
        ("0044 7700 900125", "+447700900125"),  # dialled from abroad, as some phones store it
    ],
)
def test_a_uk_number_written_in_its_international_forms_is_taken(
    site: PublicPages, typed: str, kept: str
) -> None:
    # A frightened relative copies their number as their phone or letterhead shows it: it is a
    # UK number, and "Enter a UK phone number" would only stop them asking for a review.
    answer = send(site, callback_number=typed)
    assert answer.status_code == 200, re.findall(r"Error:</span>([^<]*)", answer.text)
    assert [review.callback_number for review in stored(site)] == [kept]
    assert "RR-0001" in answer.text


def test_a_bed_as_families_type_it_is_taken(site: PublicPages) -> None:
    # What a relative reads off the sign over the bed, or types on an iPhone (which turns ' into
    # ’): a floor-and-room number, a full stop, a Welsh name, an accent typed as its own mark.
    beds = [
        "Room 2.14",  # new hospitals number rooms by floor: 2.14
        "Bed 4.",
        "Women’s bay, bed 4",
        "Bay 3, bed 2",
        "SR1",
        "Gwely 4, Bae 2",
        "Ystafell ochr 3",
        "Gwely\u0302 4",  # ŵ as w and its accent, as some keyboards and pastes give it
    ]
    for number, bed in enumerate(beds):  # from households of their own (5 an hour each)
        answer = send(site, bed=bed, headers={"X-Forwarded-For": f"198.51.100.{number}"})
        assert answer.status_code == 200, (bed, re.findall(r"Error:</span>([^<]*)", answer.text))
    assert [review.bed for review in stored(site)] == beds
    # A web address is still refused, with a dot or without a scheme.
    for bed in ("nhs-login.co/x", "x.co", "10.0.0.1/x", "bit.ly/abc", "https://x", "x.CO"):
        assert send(site, bed=bed).status_code == 400, bed


def test_an_older_browser_behind_a_proxy_that_rewrites_host_is_not_taken_for_another_site(
    db: Database, clock: FrozenClock
) -> None:
    # An older phone's browser sends no Sec-Fetch-Site, only Origin: the address it loaded the
    # form from. The trust's proxy gives the bot its own name for it in Host (Azure Application
    # Gateway's "override with backend host name"), with the visitor's in X-Forwarded-Host.
    family = "https://concern.example.nhs.uk"
    proxied = {"Origin": family, "Host": "rapidreview.internal:8000"}
    # PUBLIC_URL written with the https port, which no browser puts in Origin.
    with public_pages(make_services(db, clock), public_url=f"{family}:443") as site:
        answer = send(site, headers=proxied)
        assert answer.status_code == 200 and "RR-0001" in answer.text
    # No PUBLIC_URL: the proxy's X-Forwarded-Host names the address the family used.
    with public_pages(make_services(db, clock)) as site:
        answer = send(site, headers={**proxied, "X-Forwarded-Host": "concern.example.nhs.uk"})
        assert answer.status_code == 200 and "RR-0002" in answer.text
        # Another site's page is still refused, whatever the proxy says.
        forged = {**proxied, "Origin": "https://advert.example"}
        answer = send(site, headers={**forged, "X-Forwarded-Host": "concern.example.nhs.uk"})
        assert answer.status_code == 403 and PHONE in answer.text
    assert len(stored(site)) == 2


def test_a_browser_whose_fetch_header_was_blanked_is_judged_by_its_origin(
    site: PublicPages,
) -> None:
    # A privacy extension, or a filtering proxy on a hospital's or a school's network, that
    # blanks the browser's Sec-Fetch-Site rather than removing it (or a browser with a value of
    # its own): the family's own form was refused. Its Origin decides instead, as for a browser
    # without the header; a page elsewhere is still refused.
    token = form_token(site)
    for number, headers in enumerate(
        [
            {"Sec-Fetch-Site": ""},
            {"Sec-Fetch-Site": "", "Origin": site.url},
            {"Sec-Fetch-Site": "?"},
        ]
    ):
        answer = send(site, token=token, headers=headers, bed=str(number + 1))
        assert answer.status_code == 200, headers
    elsewhere = {"Sec-Fetch-Site": "", "Origin": "https://advert.example"}
    answer = send(site, token=token, headers=elsewhere)
    assert answer.status_code == 403 and PHONE in answer.text
    assert len(stored(site)) == 3
