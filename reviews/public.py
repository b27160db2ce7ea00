"""What patients and families do on the public pages: raise a request (at most a few an hour
from one address, counted in the database so every replica agrees) and see what has happened
to it, by a private link that stops working a week after the request closes."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from reviews.context import Actor, Services
from reviews.messages import local_time
from reviews.model import WEB_PLATFORM, State, ValidRequest, format_reference
from reviews.service import Result, ServiceError, add_review
from storage.database import UnitOfWork
from storage.tables import Review

log = logging.getLogger(__name__)

PER_HOUR = 5  # requests recorded from one address in any hour
STATUS_LASTS = timedelta(days=7)  # after the request closes


class TooMany(ServiceError):
    """More requests from one address this hour than PER_HOUR; nothing was recorded."""


def public_actor(submission_key: str) -> Actor:
    """Whoever sent one form: known only by that form's key, so no one else is its raiser."""
    return Actor(platform=WEB_PLATFORM, user_id=submission_key, name="Public page")


def site_key(services: Services) -> bytes:
    """The key every replica signs the public forms with: made once, kept in the database."""
    with services.db.unit_of_work() as uow:
        return bytes.fromhex(uow.web.secret("public-pages", secrets.token_hex(32)))


def address_key(key: bytes, address: str, form: str = "request") -> str:
    """What is stored of a sender's address: a keyed hash, so the table holds no IP address.
    Each form has its own (`form` "request" or "daily view"): behind a hospital's guest Wi-Fi
    every visitor shares one address, and routine daily views must not use up the urgent
    requests' allowance."""
    counted = "address" if form == "request" else f"{form}:address"
    return hmac.new(key, f"{counted}:{visitor(address)}".encode(), hashlib.sha256).hexdigest()


def visitor(address: str) -> str:
    """Who an address stands for: an IPv6 address by its /64, which one home or phone holds
    whole and may send from any address of; an IPv4-mapped one as plain IPv4."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def raise_from_public_page(
    *, services: Services, request: ValidRequest, submission_key: str, sender: str
) -> Result:
    """Record a patient's or family's request. The same submission_key (a double tap, a reload)
    finds the first request and counts once. TooMany when `sender` (address_key) has had
    PER_HOUR recorded in the last hour; DatabaseUnavailable when nothing could be recorded."""
    try:
        return _raise(services, request, submission_key, sender)
    except IntegrityError:
        # Two copies of one form raced: the other one recorded it.
        with services.db.unit_of_work() as uow:
            existing, _ = _still_open(uow, submission_key)
        if existing is None:
            raise
        return Result(existing, False, f"{format_reference(existing.id or 0)} was already raised.")


def _raise(services: Services, request: ValidRequest, key: str, sender: str) -> Result:
    now = services.clock.now()
    with services.db.unit_of_work() as uow:
        existing, key = _still_open(uow, key)
        if existing:
            return Result(
                existing, False, f"{format_reference(existing.id or 0)} was already raised."
            )
        count_submission(uow, sender, now)
        review = add_review(uow, services, request, public_actor(key), now=now, submission_key=key)
    reference = format_reference(review.id or 0)
    log.info("%s raised from the public page (%s)", reference, review.urgency)
    return Result(review, True, f"{reference} raised.")


def _still_open(uow: UnitOfWork, key: str) -> tuple[Review | None, str]:
    """The request the form with `key` raised, while it is open: a double tap or a reload.
    Once that request is closed or cancelled, the same form sent again (the phone still showing
    it, the patient worse again) is a new request: None, and the key it is stored under."""
    existing = uow.reviews.by_submission_key(key)
    while existing is not None and not State(existing.state).is_open:
        key = f"{key}+{existing.id}"
        existing = uow.reviews.by_submission_key(key)
    return existing, key


def count_submission(uow: UnitOfWork, sender: str, now: datetime) -> None:
    """Count one public submission from `sender` (address_key: a request, or a daily view, each
    form counted apart); TooMany when it has had PER_HOUR in the last hour, and then nothing is
    counted."""
    hour_ago = now - timedelta(hours=1)
    if uow.web.count_submissions(sender, hour_ago) >= PER_HOUR:
        raise TooMany(f"More than {PER_HOUR} submissions in an hour from one address.")
    uow.web.record_submission(sender, now, forget_before=hour_ago)


@dataclass(frozen=True)
class Step:
    """One line of the status page: what happened and when (a time, never a name)."""

    what: str
    at: str | None  # local time; None while it has not happened yet


@dataclass(frozen=True)
class PublicStatus:
    reference: str
    ward: str
    steps: tuple[Step, ...]
    open: bool


def public_status(*, services: Services, token: str) -> PublicStatus | None:
    """What the person who raised a request may see of it; None for an unknown token or one
    whose request closed more than STATUS_LASTS ago."""
    now = services.clock.now()
    with services.db.unit_of_work() as uow:
        review = uow.web.review_by_status_token(token)
    if review is None:
        return None
    ended = review.closed_at or review.cancelled_at
    if ended is not None and now - ended > STATUS_LASTS:
        return None

    def when(moment: datetime | None) -> str | None:
        return local_time(moment, services.timezone) if moment else None

    steps = [
        Step("We received your request", when(review.raised_at)),
        Step("The outreach team has seen it", when(review.acknowledged_at)),
        Step("A nurse is on the way or with the patient", when(review.attending_at)),
    ]
    if review.cancelled_at:
        steps.append(Step("Closed without a review", when(review.cancelled_at)))
    else:
        steps.append(Step("The review is finished", when(review.closed_at)))
    return PublicStatus(
        reference=format_reference(review.id or 0),
        ward=review.ward,
        steps=tuple(steps),
        open=ended is None,
    )
