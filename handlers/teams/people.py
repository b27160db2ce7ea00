"""Who is acting in Teams, and remembering how to reach them later.

The rota's `teams_user_id` holds a person's Microsoft Entra object id (a GUID, `aadObjectId`
in activities): it is what a trust's IT team can look up and what Teams accepts when creating a
1:1 chat. A person without one is known by their Teams id (`29:...`) instead.

The first time someone talks to the bot we store their conversation reference (service URL,
Teams id, tenant, and their personal chat's id when it is one) on their staff record, so
escalation pings can reach them in a direct chat later.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from reviews.context import Actor, Services
from storage.database import UnitOfWork
from storage.tables import Staff

log = logging.getLogger(__name__)
PLATFORM = "teams"


def teams_user_id(activity: dict[str, Any]) -> str:
    sender = activity.get("from") or {}
    return str(sender.get("aadObjectId") or sender.get("id") or "")


def actor(services: Services, activity: dict[str, Any]) -> Actor:
    """The person behind an activity, named as the staff directory knows them."""
    user_id = teams_user_id(activity)
    name = str((activity.get("from") or {}).get("name") or user_id)
    with services.db.unit_of_work() as uow:
        person = _find(uow, activity)
        if person is not None:
            return Actor(
                platform=PLATFORM,
                user_id=person.teams_user_id or user_id,
                name=person.name,
                email=person.email or "",
            )
    return Actor(platform=PLATFORM, user_id=user_id, name=name)


def remember(services: Services, activity: dict[str, Any]) -> None:
    """Store (or refresh) the sender's conversation reference; a new person gets a staff record
    holding only their name and Teams id, which gives no rights (responders need a shift)."""
    user_id = teams_user_id(activity)
    if not user_id or not activity.get("serviceUrl"):
        return
    reference = json.dumps(_reference(activity), sort_keys=True)
    with services.db.unit_of_work() as uow:
        person = _find(uow, activity)
        if person is None:
            name = str((activity.get("from") or {}).get("name") or "Teams user")
            person = uow.rota.add_staff(Staff(name=name[:200], teams_user_id=user_id))
        old = json.loads(person.teams_conversation or "{}")
        new = json.loads(reference)
        # A channel message tells us no personal chat id: keep the one we already know.
        if not new.get("conversationId") and old.get("conversationId"):
            new["conversationId"] = old["conversationId"]
        merged = json.dumps(new, sort_keys=True)
        if merged != person.teams_conversation:
            person.teams_conversation = merged
            uow.session.add(person)


def save_personal_conversation(
    services: Services, user_id: str, conversation_id: str, service_url: str
) -> None:
    """Keep the 1:1 chat the sender had to create, so the next message goes straight there."""
    with services.db.unit_of_work() as uow:
        person = uow.rota.staff_by_platform_id(PLATFORM, user_id)
        if person is None:
            return
        reference = json.loads(person.teams_conversation or "{}")
        reference.update(conversationId=conversation_id, serviceUrl=service_url)
        person.teams_conversation = json.dumps(reference, sort_keys=True)
        uow.session.add(person)


def reference_for(services: Services, user_id: str) -> dict[str, Any]:
    """The stored conversation reference of `user_id`; {} when they never talked to the bot."""
    with services.db.unit_of_work() as uow:
        person = uow.rota.staff_by_platform_id(PLATFORM, user_id)
        return json.loads(person.teams_conversation or "{}") if person else {}


def _find(uow: UnitOfWork, activity: dict[str, Any]) -> Staff | None:
    sender = activity.get("from") or {}
    for candidate in (sender.get("aadObjectId"), sender.get("id")):
        if candidate:
            person = uow.rota.staff_by_platform_id(PLATFORM, str(candidate))
            if person is not None:
                return person
    return None


def _reference(activity: dict[str, Any]) -> dict[str, Any]:
    sender = activity.get("from") or {}
    conversation = activity.get("conversation") or {}
    tenant = conversation.get("tenantId") or (
        (activity.get("channelData") or {}).get("tenant") or {}
    ).get("id")
    personal = conversation.get("conversationType") == "personal"
    return {
        "serviceUrl": activity["serviceUrl"],
        "userId": sender.get("id"),
        "aadObjectId": sender.get("aadObjectId"),
        "tenantId": tenant,
        "conversationId": conversation.get("id") if personal else None,
    }
