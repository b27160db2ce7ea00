"""What rota work needs of the core's Services, declared here so that rotas never imports
reviews (the arrows point down: handlers -> reviews -> rotas -> storage). reviews.context's
Services has all of it."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from storage.database import Database


class Clock(Protocol):
    def now(self) -> datetime: ...


class Roles(Protocol):
    def roles(self) -> list[str]:
        """The roles the escalation policy names."""
        ...


class RotaServices(Protocol):
    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def policy(self) -> Roles: ...

    @property
    def timezone(self) -> ZoneInfo: ...
