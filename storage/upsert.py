"""INSERT ... ON CONFLICT for whichever database a session is on.

SQLAlchemy's core insert has no ON CONFLICT; PostgreSQL's and SQLite's dialects each have one,
with the same calls (on_conflict_do_nothing, on_conflict_do_update). The stores that claim a
row once across replicas, or keep one row per key, take theirs from here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session


def insert_for(session: Session) -> Callable[[Any], postgresql.Insert | sqlite.Insert]:
    """The dialect's insert for `session`'s database: PostgreSQL's, else SQLite's."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
