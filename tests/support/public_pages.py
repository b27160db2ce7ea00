"""The public pages over real HTTP: the bot's own HTTP app (bot.make_http) on a loopback port."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import make_http
from reviews.context import Services
from reviews.wards import load_wards
from settings import Settings
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
