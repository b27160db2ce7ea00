"""Queueing outbound messages for every platform a trust runs, inside the caller's transaction.

Keys make each message once-only: a second writer of the same key (a double click, a second
replica's sweep) is refused by the outbox's UNIQUE constraint and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from reviews.messages import Message
from storage.database import UnitOfWork
from storage.rota import PLATFORM_ID_COLUMN
from storage.tables import Staff


@dataclass(frozen=True)
class Route:
    """One platform the bot speaks on, and its channels there."""

    platform: str  # "slack", "teams", "shell"
    outreach_channel: str
    digest_channel: str = ""


def person_address(route: Route, person: Staff) -> str | None:
    """The person's id on the route's platform, if the directory has one."""
    value = getattr(person, PLATFORM_ID_COLUMN.get(route.platform, ""), None)
    return value or None


def to_outreach(
    uow: UnitOfWork,
    routes: tuple[Route, ...],
    *,
    key: str,
    kind: str,
    message: Message,
    at: datetime,
    review_id: int | None = None,
) -> bool:
    """`kind` is card (post and remember it), card_update, thread or channel.
    True if anything was queued (False: every route had this key already)."""
    queued = False
    for route in routes:
        queued |= uow.outbox.enqueue(
            key=f"{key}:{route.platform}",
            platform=route.platform,
            kind=kind,
            address=route.outreach_channel,
            payload=message.to_json(),
            at=at,
            review_id=review_id,
        )
    return queued


def to_digest_channel(
    uow: UnitOfWork,
    routes: tuple[Route, ...],
    *,
    key: str,
    message: Message,
    at: datetime,
    review_id: int | None = None,
) -> bool:
    """An alarm for the managers (a cover gap, a message that failed, a request that could not
    be escalated): to the digest channel, or where a route has none (DIGEST_CHANNEL is optional)
    to its outreach channel, so that no alarm goes nowhere. True if anything was queued."""
    queued = False
    for route in routes:
        queued |= uow.outbox.enqueue(
            key=f"{key}:{route.platform}",
            platform=route.platform,
            kind="channel",
            address=route.digest_channel or route.outreach_channel,
            payload=message.to_json(),
            at=at,
            review_id=review_id,
        )
    return queued


def to_person(
    uow: UnitOfWork,
    routes: tuple[Route, ...],
    person: Staff,
    *,
    key: str,
    message: Message,
    at: datetime,
    review_id: int | None = None,
) -> list[str]:
    """Direct-message a person on every platform where we know them; the platforms used."""
    reached = []
    for route in routes:
        address = person_address(route, person)
        if address:
            uow.outbox.enqueue(
                key=f"{key}:{route.platform}",
                platform=route.platform,
                kind="direct",
                address=address,
                payload=message.to_json(),
                at=at,
                review_id=review_id,
            )
            reached.append(route.platform)
    return reached


def to_user(
    uow: UnitOfWork,
    *,
    platform: str,
    user_id: str,
    key: str,
    message: Message,
    at: datetime,
    review_id: int | None = None,
) -> None:
    """Direct-message a platform user who may not be in the staff directory (a raiser)."""
    uow.outbox.enqueue(
        key=key,
        platform=platform,
        kind="direct",
        address=user_id,
        payload=message.to_json(),
        at=at,
        review_id=review_id,
    )


def tell_holders(
    uow: UnitOfWork,
    routes: tuple[Route, ...],
    roles: Sequence[str],
    holders_of: Callable[[str], Sequence[Staff]],
    *,
    key: str,
    message: Message,
    now: datetime,
    review_id: int | None,
    skip: set[int | None] | None = None,
) -> tuple[list[str], dict[str, str], list[str]]:
    """Direct-message everyone holding `roles`, each once, under `key`:person. Returns who was
    told, who could not be messaged (key part -> sentence) and the roles nobody holds."""
    told: list[str] = []
    unreachable: dict[str, str] = {}
    gaps: list[str] = []
    seen = set(skip or ())
    for role in roles:
        holders = holders_of(role)
        if not holders:
            gaps.append(role)
        for person in holders:
            if person.id in seen:
                continue
            seen.add(person.id)
            if to_person(
                uow,
                routes,
                person,
                key=f"{key}:{person.id}",
                message=message,
                at=now,
                review_id=review_id,
            ):
                told.append(person.name)
            else:
                unreachable[f"staff{person.id}"] = f"{person.name} ({role}) cannot be messaged"
    return told, unreachable, gaps
