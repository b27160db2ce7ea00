"""Inbound activities: commands typed to the bot, the request form, and the card's buttons.

Action.Execute arrives as an `adaptiveCard/action` invoke and is answered in the HTTP response
(a refreshed card, or a message only the presser sees). The Action.Submit fallback arrives as a
message carrying `value`; its answer is posted back to the person. Everyone else sees the card
change through the outbox's card_update, exactly as in Slack.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError

from handlers.deadline import NotConfirmed, within_deadline
from handlers.one_at_a_time import Waited, in_time
from handlers.teams import cards, checkin
from handlers.teams.connector import Connector
from handlers.teams.people import actor, remember, teams_user_id
from reviews import messages, notify, service
from reviews.context import Actor, Services
from reviews.model import (
    Action,
    FormErrors,
    ReviewForm,
    validate,
    validate_outcome,
    validate_reason,
)
from reviews.outbox import DeliveryError
from reviews.wards import chosen_ward
from storage.database import DatabaseUnavailable

log = logging.getLogger(__name__)

HELP = (
    "**Rapid review** (Martha's Rule): ask the critical care outreach team to review a patient.\n\n"
    "- `rapidreview` - raise a request (the form)\n"
    "- `checkin` - record a patient's daily check-in (how they feel today)\n"
    "- `open` - requests not yet closed, oldest first\n"
    "- `rota` - who holds each role now, and who is next\n"
    "- `help` - this help\n\n"
    "In a channel, mention the bot first. In an emergency call 2222."
)
MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
REMEMBER_DEADLINE = 0.5  # seconds; the change then gets handlers.deadline.DEADLINE
# A press (or a card's submit) acts as whoever pressed: someone on the rota by email only is known
# by Teams id once the connector has said who they are, a second or more. While it is being
# asked (the database having answered), a press waits this much longer: she was told she was
# not on the rota. A stalled database is not waited for longer: with the change's DEADLINE,
# a press is answered inside Teams' 5 s for an invoke either way.
ASKING_CONNECTOR_MORE = 1.5
# Seconds `open`, `rota` or a check-in card waits for the database before saying it cannot
# reach it: inside the 15 s the Bot Framework gives an answer.
ANSWER_WAIT = 10.0
Answer = tuple[str, Any]  # ("card", Adaptive Card) or ("text", str)


class ActivityHandler:
    def __init__(self, services: Services, connector: Connector):
        self.services = services
        self.connector = connector

    def handle(self, activity: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """The HTTP status and body to answer an authenticated activity with."""
        kind = activity.get("type")
        acting = kind == "invoke" or isinstance(activity.get("value"), dict)
        asking = threading.Event()
        try:
            # Briefly: a stalled database must leave the form its own deadline to answer in.
            within_deadline(
                lambda: remember(self.services, activity, self.connector, asking),
                "Teams conversation reference",
                seconds=REMEMBER_DEADLINE,
                longer=lambda: acting and asking.is_set(),
                more=ASKING_CONNECTOR_MORE,
            )
        except (DatabaseUnavailable, IntegrityError, NotConfirmed) as error:
            # Not worth failing the request: the reference is stored on their next message.
            log.warning("Teams conversation reference not stored: %s", type(error).__name__)
        if kind == "invoke" and activity.get("name") == "adaptiveCard/action":
            # Read inside _safely: a press whose value is not what a card sends is answered too.
            answer = self._safely(lambda: self._act(activity, pressed_data(activity)))
            return 200, invoke_response(answer)
        if kind == "message":
            if isinstance(activity.get("value"), dict):
                value = activity["value"]
                self._answer_submit(activity, self._safely(lambda: self._act(activity, value)))
            else:
                self._reply(activity, self._safely(lambda: self._command(activity)))
        return 200, None

    def _safely(self, work: Callable[[], Answer]) -> Answer:
        """`work()`'s answer; whatever goes wrong, the person still hears how to reach the team
        (Teams would otherwise show a bare error, or nothing)."""
        try:
            return work()
        except Exception as error:  # noqa: BLE001 - the person must hear, whatever went wrong
            # Only the type: an error's text can carry what was typed.
            log.error("Teams activity failed: %s", type(error).__name__)
            return "card", cards.alarm(
                "NOT CONFIRMED",
                "Something went wrong, so do not rely on this having been recorded.",
                self._fallback,
            )

    def _command(self, activity: dict[str, Any]) -> Answer:
        words = MENTION.sub(" ", str(activity.get("text") or "")).lower().split()
        if words and words[0].lstrip("/") == "rapidreview":
            words = words[1:]  # "rapidreview open" works like Slack's "/rapidreview open"
        word = words[0] if words else ""
        try:
            # On a thread of its own: one waiting on a database that hangs (takes connections,
            # never answers) held one of the server's threads for as long as it hung.
            return in_time(lambda: self._answer(word, activity), ANSWER_WAIT, name="teams")
        except (DatabaseUnavailable, Waited):
            return "text", f"The bot cannot reach its database just now. {self._fallback}"

    def _answer(self, word: str, activity: dict[str, Any]) -> Answer:
        if word == "":
            return "card", cards.request_form(wards=self.services.wards.names())
        if word == "checkin":
            return "card", checkin.open_card(self.services, activity)
        if word == "open":
            return "text", open_requests(self.services)
        if word == "rota":
            return "text", self._rota()
        return "text", HELP

    def _rota(self) -> str:
        from rotas.view import rota_lines

        return "\n\n".join(rota_lines(services=self.services, at=self.services.clock.now()))

    @property
    def _fallback(self) -> str:
        return self.services.fallback_contact

    def _act(self, activity: dict[str, Any], data: dict[str, Any]) -> Answer:
        """Do what a form or button asked for; the answer for the person who pressed it."""
        verb = str(data.get("rr_verb") or "")
        if verb == cards.RAISE:
            return self._raise(activity, data)
        if verb == checkin.CHECKIN:
            return "card", checkin.record(self.services, activity, data)
        try:
            pressed = Action(verb)
            review_id = int(data.get("review") or 0)
            return self._press(activity, pressed, review_id, data)
        except service.ServiceError as refused:
            return "text", str(refused)
        except DatabaseUnavailable as error:
            log.warning("Teams button not recorded: %s", error)
            return (
                "text",
                f"Nothing was recorded: the bot cannot reach its database. {self._fallback}",
            )
        except ValueError:
            return "text", "That button is no longer recognised; use the latest card."

    def _press(
        self, activity: dict[str, Any], pressed: Action, review_id: int, data: dict[str, Any]
    ) -> Answer:
        """Make the change within the deadline (handlers/deadline.py); the presser's answer."""
        change: Callable[[Actor], service.Result]
        if pressed is Action.RECORD_OUTCOME:
            try:
                outcome, detail = validate_outcome(
                    *(str(data.get(name) or "") for name in ("outcome", "destination", "note"))
                )
            except FormErrors as problems:
                return "text", " ".join(problems.errors.values())
            change = lambda by: service.record_outcome(  # noqa: E731
                services=self.services, review_id=review_id, by=by, outcome=outcome, detail=detail
            )
        elif pressed is Action.CANCEL:
            try:
                reason = validate_reason(str(data.get("reason") or ""))
            except FormErrors as problems:
                return "text", " ".join(problems.errors.values())
            change = lambda by: service.cancel(  # noqa: E731
                services=self.services, review_id=review_id, by=by, reason=reason
            )
        else:
            verb = service.acknowledge if pressed is Action.ACKNOWLEDGE else service.attend
            change = lambda by: verb(services=self.services, review_id=review_id, by=by)  # noqa: E731
        try:
            result = within_deadline(
                lambda: change(actor(self.services, activity)), f"{pressed.value} from Teams"
            )
        except NotConfirmed:
            return "text", (
                "NOT CONFIRMED: the bot could not confirm in time that this was saved; look at "
                f"the request card before relying on it. {self._fallback}"
            )
        if not result.changed:
            return "text", result.note
        return "card", cards.render(messages.card(result.review, self.services.timezone))

    def _raise(self, activity: dict[str, Any], data: dict[str, Any]) -> Answer:
        typed = {name: str(data.get(name) or "") for name in ReviewForm.__dataclass_fields__}
        typed["ward"] = chosen_ward(
            typed["ward"], str(data.get("ward_other") or ""), self.services.wards
        )
        form_id = str(data.get("rr_form") or "") or None
        try:
            request = validate(ReviewForm(**typed))
        except FormErrors as problems:
            shown = dict(typed)
            if (activity.get("conversation") or {}).get("conversationType") != "personal":
                # The form comes back where everyone in the channel can see it: never refill
                # the patient's NHS number or the family's phone number there.
                shown.update(nhs_number="", callback_number="")
            wards = self.services.wards.names()
            return "card", cards.request_form(shown, problems.errors, form_id, wards)
        key = submission_key(form_id, teams_user_id(activity), typed) if form_id else None
        try:
            result = within_deadline(
                lambda: service.raise_review(
                    services=self.services,
                    request=request,
                    by=actor(self.services, activity),
                    submission_key=key,
                ),
                "request from Teams",
            )
        except NotConfirmed:
            # If the commit lands later, the team still sees it.
            return "card", cards.alarm(
                "NOT CONFIRMED",
                "The bot could not confirm in time that this request was saved, so do not rely "
                "on the outreach team having been alerted.",
                self._fallback,
            )
        except Exception as error:  # noqa: BLE001 - whatever went wrong, say nothing was recorded
            # Only the type: a database error's text can carry the form's values.
            log.error("request from Teams NOT recorded: %s", type(error).__name__)
            return "card", cards.alarm(
                "NOTHING WAS RECORDED",
                "The bot could not save this request, so the outreach team has NOT been alerted.",
                self._fallback,
            )
        if not result.changed:  # Teams sent this person's same submission again
            return "card", cards.said(
                f"Already raised as {result.reference}",
                "This form was already sent; nothing new was added.",
                f"**If the patient worsens before they arrive:** {self._fallback}",
            )
        return "card", cards.said(
            f"{result.reference} raised",
            "The outreach team has been alerted and will acknowledge it; you will get a message "
            "when they do.",
            f"**If the patient worsens before they arrive:** {self._fallback}",
        )

    def _answer_submit(self, activity: dict[str, Any], answer: Answer) -> None:
        """The Action.Submit fallback has no private answer in a channel: a refusal or note goes
        to the presser's 1:1 chat through the outbox instead of to everyone in the channel."""
        conversation = activity.get("conversation") or {}
        if conversation.get("conversationType") == "personal" or answer[0] == "card":
            self._reply(activity, answer)
            return
        try:
            with self.services.db.unit_of_work() as uow:
                notify.to_user(
                    uow,
                    platform="teams",
                    user_id=teams_user_id(activity),
                    key=f"note:teams:{activity.get('id')}",
                    message=messages.Message(text=str(answer[1])),
                    at=self.services.clock.now(),
                )
        except DatabaseUnavailable:
            self._reply(activity, answer)  # the database is down: say so where they are

    def _reply(self, activity: dict[str, Any], answer: Answer) -> None:
        """Answer a message in its own conversation (a channel: in the thread it came from)."""
        conversation = activity.get("conversation") or {}
        reply: dict[str, Any] = {"type": "message", "replyToId": activity.get("id")}
        kind, content = answer
        if kind == "card":
            reply["attachments"] = [cards.attachment(content)]
        else:
            reply.update(text=cards.inert(content), textFormat="markdown")
        try:
            self.connector.post_activity(
                str(activity.get("serviceUrl")), str(conversation.get("id")), reply
            )
        except DeliveryError as error:
            log.warning("Teams reply not delivered: %s", error)


def pressed_data(activity: dict[str, Any]) -> dict[str, Any]:
    """An Action.Execute press's data, with its verb as `rr_verb`."""
    action = (activity.get("value") or {}).get("action") or {}
    return {**(action.get("data") or {}), "rr_verb": action.get("verb")}


def submission_key(form_id: str, user_id: str, typed: dict[str, str]) -> str:
    """One person's one submission of one form: Teams retrying it finds the first review, while
    a colleague using the same channel card, or the same person sending other details, raises
    a new one."""
    submission = json.dumps([form_id, user_id, typed], sort_keys=True)
    return "teams:" + hashlib.sha256(submission.encode()).hexdigest()


def invoke_response(answer: Answer) -> dict[str, Any]:
    """The body answering an adaptiveCard/action invoke: a card replaces the card for the
    presser at once; a message is shown to the presser only."""
    kind, content = answer
    if kind == "card":
        return {"statusCode": 200, "type": cards.CARD_CONTENT_TYPE, "value": content}
    return {
        "statusCode": 200,
        "type": "application/vnd.microsoft.activity.message",
        "value": cards.inert(content),
    }


def open_requests(services: Services) -> str:
    """Requests not yet closed, oldest first, one line each (no identifiers)."""
    return service.open_requests(services=services).text(bold="**", newline="\n\n")
