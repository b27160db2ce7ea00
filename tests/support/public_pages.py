"""The public pages over real HTTP: the bot's own HTTP app (bot.make_http) on a loopback port."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from sqlmodel import col, select

from bot import make_http
from reviews.context import Services
from reviews.wards import load_wards
from settings import Settings
from storage.tables import Outbox, Review
from tests.support.http import serve

EXAMPLE_WARDS = Path(__file__).resolve().parents[2] / "wards.example.toml"
PHONE = "01632 960 001"  # Ofcom's drama range: never a real line


@dataclass
class PublicPages:
    services: Services
    url: str


@contextmanager
def public_pages(services: Services, **settings: Any) -> Iterator[PublicPages]:
    """`services` with the example wards, served as `python bot.py` serves them."""
    settings = {"wards_file": EXAMPLE_WARDS, "concern_phone": PHONE, **settings}
    services = dataclasses.replace(services, wards=load_wards(settings["wards_file"]))
    proxies = settings.pop("forwarded_allow_ips", "127.0.0.1")
    app = make_http(services, Settings(**settings), [])
    with serve(app, forwarded_allow_ips=proxies) as url:
        yield PublicPages(services, url)


# The public form as a worried daughter fills it in (test phone range, made-up names).
FAMILY_FORM = {
    "caller": "family",
    "your_name": "Jo Bloggs",
    "relationship": "daughter",
    "patient_name": "Ann Bloggs",
    "bed": "12",
    "concern": "Mum is not making sense and is much sleepier than this morning",
    "spoken_to_ward": "yes",
    "callback_number": "07700 900123",
}


def form_token(site: PublicPages, ward: str = "ward-7") -> str:
    """A fresh anti-forgery token, as a browser gets it by loading the form."""
    page = requests.get(f"{site.url}/concern/{ward}/review", timeout=10)
    assert page.status_code == 200, page.status_code
    match = re.search(r'name="token" value="([^"]+)"', page.text)
    assert match, "the form has no anti-forgery field"
    return match[1]


def send(
    site: PublicPages,
    ward: str = "ward-7",
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    **changes: str,
) -> requests.Response:
    """POST the family's form (with `changes`) as the browser would; a new token unless given."""
    token = form_token(site, ward) if token is None else token
    fields = {**FAMILY_FORM, **changes, "token": token}
    return requests.post(
        f"{site.url}/concern/{ward}/review", data=fields, headers=headers or {}, timeout=10
    )


def status_link(answer: requests.Response) -> str:
    match = re.search(r'href="(http[^"]*/concern/status/[A-Za-z0-9_-]+)"', answer.text)
    assert match, "the answer page has no status link"
    return match[1]


def stored(site: PublicPages) -> list[Review]:
    with site.services.db.unit_of_work() as uow:
        return list(uow.session.exec(select(Review).order_by(col(Review.id))))


def outbox(site: PublicPages) -> list[Outbox]:
    with site.services.db.unit_of_work() as uow:
        return list(uow.session.exec(select(Outbox).order_by(col(Outbox.id))))
