"""The outreach team's roster in Teams: finding a rota person's Entra object id by their email.

A Teams-only trust's rota lists staff by NHSmail address. At rota import the importer asks this
lookup for each email it has no Teams id for; the roster is read once per import (every page,
following the connector's continuationToken) and matched on email and userPrincipalName.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handlers.teams.connector import Connector
from reviews.outbox import DeliveryError
from storage.rota import platform_user_id

# 500 a page (the connector's largest): 200 pages is far beyond any trust's team.
MAX_PAGES = 200


def lookup_teams_id(
    connector: Connector, *, service_url: str, conversation_id: str
) -> Callable[[str], str | None]:
    """email -> the person's Teams id (Entra object id) from the roster of the team holding
    `conversation_id`; None when they are not in it.

    The first call reads the roster; a connector failure raises DeliveryError, so a rota import
    stops and says so rather than quietly storing people without their Teams ids.
    """
    roster: dict[str, str] | None = None

    def lookup(email: str) -> str | None:
        nonlocal roster
        if roster is None:
            roster = _read_roster(connector, service_url, conversation_id)
        return roster.get(email.strip().lower())

    return lookup


def member_addresses(member: dict[str, Any]) -> list[str]:
    """The addresses a member may be listed under on a rota, lower case (email first)."""
    found = (member.get("email"), member.get("userPrincipalName"))
    return [str(address).strip().lower() for address in found if address]


def member_id(member: dict[str, Any]) -> str:
    """The id the directory keeps for a member: their Entra object id, else their Teams id."""
    return platform_user_id("teams", str(member.get("aadObjectId") or member.get("id") or ""))


def _read_roster(connector: Connector, service_url: str, conversation_id: str) -> dict[str, str]:
    roster: dict[str, str] = {}
    continuation: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        page = connector.members_page(service_url, conversation_id, continuation)
        for member in page.get("members") or []:
            if isinstance(member, dict) and member_id(member):
                for address in member_addresses(member):
                    roster.setdefault(address, member_id(member))
        continuation = page.get("continuationToken") or None
        if continuation is None:
            return roster
        if continuation in seen:  # a connector repeating itself would otherwise loop for ever
            break
        seen.add(continuation)
    raise DeliveryError("the Teams roster did not end; try again later", permanent=True)
