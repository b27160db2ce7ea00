"""Builders for tests: services over a real database, staff on the rota, a recording sender."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from reviews.clock import Clock
from reviews.context import Actor, Services
from reviews.model import ReviewForm, ValidRequest, validate
from reviews.notify import Route
from reviews.outbox import LEASE, DeliveryError, OutboundItem, drain
from reviews.policy import Policy, load_policy
from storage.database import Database
from storage.tables import Shift, Staff
from tests.support.clock import FrozenClock

SHIPPED_POLICY = Path(__file__).resolve().parents[2] / "escalation.toml"
SLACK_ROUTE = Route(platform="slack", outreach_channel="C0OUTREACH", digest_channel="C0DIGEST")


def make_services(
    db: Database,
    clock: Clock,
    *,
    policy: Policy | None = None,
    routes: tuple[Route, ...] = (SLACK_ROUTE,),
    managers: frozenset[str] = frozenset(),
    rota_admins: frozenset[str] = frozenset(),
) -> Services:
    return Services(
        db=db,
        clock=clock,
        policy=policy or load_policy(SHIPPED_POLICY),
        routes=routes,
        managers=managers,
        rota_admins=rota_admins,
    )


def on_rota(
    db: Database,
    role: str,
    name: str,
    slack_user_id: str,
    start: datetime,
    hours: float = 12,
    email: str | None = None,
    contact: Mapping[str, str] | None = None,
) -> Staff:
    """Put a person on the rota for `role` from `start`; `contact` sets their Staff fields
    such as pager or mobile."""
    with db.unit_of_work() as uow:
        person = uow.rota.staff_by_platform_id("slack", slack_user_id) or uow.rota.add_staff(
            Staff(name=name, slack_user_id=slack_user_id, email=email)
        )
        assert person.id is not None
        for field_name, value in (contact or {}).items():
            setattr(person, field_name, value)
        uow.session.add(
            Shift(
                role=role,
                staff_id=person.id,
                start=start,
                end=start + timedelta(hours=hours),
                source="test",
                imported_at=start,
            )
        )
    return person


# The request form as a ward nurse fills it in for a worried family (test NHS number range).
FILLED_FORM = {
    "caller": "family",
    "ward": "Ward 7",
    "bed": "12",
    "nhs_number": "9990000018",
    "news2": "6",
    "concern_kind": "deterioration",
    "concern": "Mum is much more confused than this morning",
    "callback_number": "07700 900123",
}


def request(**changes: str) -> ValidRequest:
    return validate(ReviewForm(**{**FILLED_FORM, **changes}))


NURSE = Actor(platform="slack", user_id="U0WARDNURSE", name="Ward Nurse")
OUTREACH = Actor(platform="slack", user_id="U01ALEX", name="Alex Carter")


@dataclass
class RecordingSender:
    """Stands in for a chat platform: records every item; can be told to fail first (only
    items to `failing`, when given: the outbox sends to several destinations at once, so which
    is first is up to the threads). Safe to call from the outbox's workers at once."""

    sent: list[OutboundItem] = field(default_factory=list)
    failures: list[DeliveryError] = field(default_factory=list)
    failing: str | None = None  # the one address the failures are for
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def deliver(self, item: OutboundItem) -> str | None:
        with self.lock:
            if self.failures and self.failing in (None, item.address):
                raise self.failures.pop(0)
            self.sent.append(item)
            return f"msg-{len(self.sent)}"

    def to(self, address: str) -> list[OutboundItem]:
        return [item for item in self.sent if item.address == address]

    def id_of(self, item: OutboundItem) -> str:
        """The message id `deliver` returned for `item`."""
        return f"msg-{self.sent.index(item) + 1}"


def unsent(db: Database, review_ids: Iterable[int]) -> list[str]:
    """Keys of those reviews' outbox messages still to go (not yet sent, failed or dropped)."""
    with db.unit_of_work() as uow:
        return [
            row.key
            for review_id in review_ids
            for row in uow.outbox.for_review(review_id)
            if row.state in ("pending", "sending")
        ]


@dataclass
class HeldSender(RecordingSender):
    """A platform whose first answer takes as long as the test likes: `sending` is set once
    the first item is on its way, and it goes when `release` is set (30 s at most)."""

    sending: threading.Event = field(default_factory=threading.Event, repr=False)
    release: threading.Event = field(default_factory=threading.Event, repr=False)

    def deliver(self, item: OutboundItem) -> str | None:
        if not self.sending.is_set():
            self.sending.set()
            assert self.release.wait(timeout=30)
        return super().deliver(item)


def another_replica_ticks_past_the_lease(services: Services, clock: FrozenClock) -> RecordingSender:
    """Another replica's outbox ticks, one a (test) second, until well past the lease a claim
    takes, while this process's drainer runs on (and renews, each RENEW_EVERY); what it sent."""
    other = RecordingSender()
    for _ in range(2 * int(LEASE.total_seconds())):
        clock.advance(seconds=1)
        time.sleep(0.1)
        drain(services, {"slack": other})
    return other


def failing_on_call(number: int, real: Callable[..., Any], error: Exception) -> Callable[..., Any]:
    """`real`, except that its `number`th call raises `error` (a disk filling half-way through
    an export, where each row's writing calls `real`)."""
    calls = 0

    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == number:
            raise error
        return real(*args, **kwargs)

    return call


def a_years_rota(roles: int) -> str:
    """A year of day and night shifts for `roles` roles, three people rotating on each."""
    rows = ["role,name,email,slack_user_id,teams_user_id,start,end\n"]
    for day in range(365):
        date = datetime(2027, 1, 1) + timedelta(days=day)
        following = date + timedelta(days=1)
        for r in range(roles):
            for half, (start, end) in enumerate(
                (
                    (f"{date:%Y-%m-%d}T08:00", f"{date:%Y-%m-%d}T20:00"),
                    (f"{date:%Y-%m-%d}T20:00", f"{following:%Y-%m-%d}T08:00"),
                )
            ):
                n = r * 3 + (day + half) % 3
                rows.append(f"role-{r},Person {n},person.{n}@nhs.net,,,{start},{end}\n")
    return "".join(rows)
