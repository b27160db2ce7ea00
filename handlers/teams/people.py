"""Who is acting in Teams, and remembering how to reach them later.

The rota's `teams_user_id` holds a person's Microsoft Entra object id (a GUID, `aadObjectId`
in activities): it is what a trust's IT team can look up and what Teams accepts when creating a
1:1 chat. A person without one is known by their Teams id (`29:...`) instead.

The first time someone talks to the bot we store their conversation reference (service URL,
Teams id, tenant, and their personal chat's id when it is one) on their staff record, so
escalation pings can reach them in a direct chat later. Someone the directory does not know by
Teams id may still be on the rota by email (a Teams-only trust's rota lists NHSmail addresses):
the Bot Connector is asked for their email, and a directory entry with it gets their Teams id.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from handlers.teams.connector import Connector
from handlers.teams.roster import member_addresses
from reviews.context import Actor, Services
from reviews.outbox import DeliveryError
from storage.database import UnitOfWork
from storage.rota import platform_user_id
from storage.tables import Staff

log = logging.getLogger(__name__)
PLATFORM = "teams"


def teams_user_id(activity: dict[str, Any]) -> str:
    sender = activity.get("from") or {}
    return platform_user_id(PLATFORM, str(sender.get("aadObjectId") or sender.get("id") or ""))


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


def remember(
    services: Services,
    activity: dict[str, Any],
    connector: Connector | None = None,
    asking: threading.Event | None = None,
) -> None:
    """Store (or refresh) the sender's conversation reference.

    Someone not known by Teams id is looked up by email through `connector` (outside any
    transaction): a directory entry with their email gets their Teams id; otherwise they get a
    new staff record, which gives no rights (responders need a shift). When the connector cannot
    answer just now nothing is stored, so their next message tries again (a record made without
    the email match would split a rota person in two). `asking` is set while the connector is
    asked (the database having answered). Database errors propagate.
    """
    user_id = teams_user_id(activity)
    if not user_id or not activity.get("serviceUrl"):
        return
    if connector is not None and _store(services, activity, None):
        return
    if asking is not None:
        asking.set()
    member = _member_details(connector, activity) if connector else {}
    if member is not None:
        _store(services, activity, member)


def _store(services: Services, activity: dict[str, Any], member: dict[str, Any] | None) -> bool:
    """Store the reference on the sender's record; False (writing nothing) when they are not
    known by Teams id and `member` is None (their details not yet asked for)."""
    user_id = teams_user_id(activity)
    reference = json.dumps(_reference(activity), sort_keys=True)
    with services.db.unit_of_work() as uow:
        person = _find(uow, activity)
        if person is None:
            if member is None:
                return False
            person = _by_member_email(uow, member, user_id) or _new_person(
                uow, activity, member, user_id
            )
        old = json.loads(person.teams_conversation or "{}")
        new = json.loads(reference)
        # A channel message tells us no personal chat id: keep the one we already know.
        if not new.get("conversationId") and old.get("conversationId"):
            new["conversationId"] = old["conversationId"]
        merged = json.dumps(new, sort_keys=True)
        if merged != person.teams_conversation:
            person.teams_conversation = merged
            uow.session.add(person)
    return True


def _member_details(connector: Connector, activity: dict[str, Any]) -> dict[str, Any] | None:
    """What the Bot Connector says about the sender: {} when it refuses to say (4xx), None when
    it cannot answer just now (network, throttling, 5xx)."""
    sender = activity.get("from") or {}
    # A channel reply's conversation id carries ";messageid=..."; the roster is the channel's.
    conversation = str((activity.get("conversation") or {}).get("id") or "").split(";")[0]
    try:
        return connector.member(
            str(activity["serviceUrl"]), conversation, str(sender.get("id") or ""), timeout=3.0
        )
    except DeliveryError as error:
        # Only the Teams id: the error never carries the person's email or name.
        log.warning("Teams member details for %s not fetched: %s", teams_user_id(activity), error)
        return {} if error.permanent else None


def _by_member_email(uow: UnitOfWork, member: dict[str, Any], user_id: str) -> Staff | None:
    """The directory entry holding the member's email, now given their Teams id."""
    for address in member_addresses(member):
        person = uow.rota.staff_by_email(address)
        if person is None:
            continue
        if person.teams_user_id:
            # Someone else's Teams id is on that entry already: never move it silently.
            log.warning("Teams user %s: their email's entry has another Teams id", user_id)
            return None
        person.teams_user_id = user_id
        uow.session.add(person)
        return person
    return None


def _new_person(
    uow: UnitOfWork, activity: dict[str, Any], member: dict[str, Any], user_id: str
) -> Staff:
    name = str((activity.get("from") or {}).get("name") or member.get("name") or "Teams user")
    # Their email (when free) lets a later rota import or MANAGERS entry find them.
    email = next((a for a in member_addresses(member)[:1] if not uow.rota.staff_by_email(a)), None)
    return uow.rota.add_staff(Staff(name=name[:200], email=email, teams_user_id=user_id))


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
