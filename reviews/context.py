"""What every service function needs: the database, the clock, the policy and the routes."""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field, replace
from datetime import time
from zoneinfo import ZoneInfo

from reviews.clock import Clock
from reviews.health import Health
from reviews.notify import Route
from reviews.policy import Policy
from reviews.wards import Wards
from storage.database import Database, UnitOfWork


@dataclass(frozen=True)
class Services:
    db: Database
    clock: Clock
    policy: Policy
    routes: tuple[Route, ...]
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/London"))
    fallback_contact: str = "Bleep the outreach team directly; in an emergency call 2222."
    managers: frozenset[str] = frozenset()
    rota_admins: frozenset[str] = frozenset()
    digest_time: time = time(8, 0)
    checkin_time: time = time(10, 0)
    retention_days: int = 90
    wards: Wards = field(default_factory=Wards)
    # Outbox platforms for texts and pages that are configured: "pager" (the trust's gateway)
    # and/or "notify" (GOV.UK Notify). Empty: nothing is texted.
    texting: tuple[str, ...] = ()
    health: Health = field(default_factory=Health)  # this process's liveness, for /healthz


@dataclass(frozen=True)
class Actor:
    """A person acting through a platform."""

    platform: str
    user_id: str
    name: str
    email: str = ""

    @property
    def label(self) -> str:
        return self.name or self.user_id

    @property
    def audited(self) -> dict[str, str]:
        """Who, for the audit trail: the name people know, the stable id, the platform."""
        return {"actor": self.label, "actor_id": self.user_id, "platform": self.platform}

    def is_in(self, group: frozenset[str]) -> bool:
        """Whether MANAGERS / ROTA_ADMINS names this person by id or email."""
        return self.user_id.lower() in group or (bool(self.email) and self.email.lower() in group)


def operator(name: str = "") -> Actor:
    """The trust's operator at the server's command line: platform "cli", the OS user's login as
    the stable id, and `name` (what they said with --by) as given, unchecked."""
    login = getpass.getuser()
    return Actor(platform="cli", user_id=login, name=name or login)


def known_as(uow: UnitOfWork, by: Actor) -> Actor:
    """`by` named as the rota's directory knows them (with its email, for MANAGERS and
    ROTA_ADMINS), or as their platform named them if it does not."""
    staff = uow.rota.staff_by_platform_id(by.platform, by.user_id)
    if staff is None:
        return by
    return replace(by, name=staff.name, email=staff.email or by.email)
