"""Form submissions: the request, the outcome, the cancellation.

Each is stored BEFORE Slack is answered, so "RR-0042 raised" is only said once it is true.
The view id is the submission key: Slack's retry of one submission finds the first review.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App

from handlers.deadline import NotConfirmed, within_deadline
from handlers.slack.forms import (
    CANCEL_FORM,
    OUTCOME_FORM,
    REQUEST_FORM,
    already_raised_view,
    field_value,
    metadata,
    not_confirmed_view,
    not_recorded_view,
    raised_view,
    read_request,
    said_view,
)
from handlers.slack.people import actor
from reviews import service
from reviews.context import Services
from reviews.model import FormErrors, Outcome, validate
from settings import Settings

log = logging.getLogger(__name__)


def register(app: App, services: Services, settings: Settings) -> None:
    fallback = services.fallback_contact

    @app.view(REQUEST_FORM)
    def submit_request(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            request = validate(read_request(view["state"]["values"]))
        except FormErrors as problems:
            ack(response_action="errors", errors=problems.errors)
            return

        def raise_it() -> service.Result:
            return service.raise_review(
                services=services,
                request=request,
                by=actor(services, body["user"]),
                submission_key=f"slack:{view['id']}",
            )

        try:
            result = within_deadline(raise_it, "request from Slack")
        except NotConfirmed:
            # If the commit lands later, the team still sees it.
            ack(response_action="update", view=not_confirmed_view(fallback))
            return
        except Exception as error:  # noqa: BLE001 - whatever went wrong, say nothing was recorded
            # Only the type: a database error's text can carry the form's values.
            log.error("request from Slack NOT recorded: %s", type(error).__name__)
            ack(response_action="update", view=not_recorded_view(fallback))
            return
        if not result.changed:  # Slack sent this very submission again
            ack(response_action="update", view=already_raised_view(result.reference, fallback))
            return
        ack(response_action="update", view=raised_view(result.reference, fallback))

    @app.view(OUTCOME_FORM)
    def submit_outcome(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = view["state"]["values"]
        chosen, destination = field_value(values, "outcome"), field_value(values, "destination")
        if not chosen:
            ack(response_action="errors", errors={"outcome": "Choose an outcome."})
            return
        outcome = Outcome(chosen)
        if outcome is Outcome.TRANSFER and not destination:
            ack(
                response_action="errors",
                errors={"destination": "Say where the patient was transferred."},
            )
            return
        detail = destination if outcome is Outcome.TRANSFER else field_value(values, "note")
        _change(
            ack,
            services,
            "Outcome",
            lambda by: service.record_outcome(
                services=services,
                review_id=int(metadata(view)["review"]),
                by=by,
                outcome=outcome,
                detail=detail,
            ),
            body["user"],
        )

    @app.view(CANCEL_FORM)
    def submit_cancel(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        reason = field_value(view["state"]["values"], "reason").strip()
        if not reason:
            ack(response_action="errors", errors={"reason": "Say why it is being cancelled."})
            return
        _change(
            ack,
            services,
            "Cancel",
            lambda by: service.cancel(
                services=services, review_id=int(metadata(view)["review"]), by=by, reason=reason
            ),
            body["user"],
        )


def _change(ack: Ack, services: Services, what: str, change: Any, user: dict[str, Any]) -> None:
    """Run `change(by)` and answer the modal with what happened, or plainly why not."""
    try:
        result = within_deadline(lambda: change(actor(services, user)), f"{what} from Slack")
    except NotConfirmed:
        ack(
            response_action="update",
            view=said_view(
                f"{what} NOT confirmed",
                "NOT CONFIRMED: the bot could not confirm in time that this was saved; look at "
                "the request card before relying on it. " + services.fallback_contact,
            ),
        )
        return
    except service.ServiceError as refused:
        ack(response_action="update", view=said_view(f"{what} not recorded", str(refused)))
        return
    except Exception as error:  # noqa: BLE001 - the nurse must hear, whatever went wrong
        log.warning("%s from Slack not recorded: %s", what, type(error).__name__)
        ack(
            response_action="update",
            view=said_view(
                f"{what} NOT recorded",
                "Nothing was recorded: the bot cannot reach its database. "
                + services.fallback_contact,
            ),
        )
        return
    ack(response_action="update", view=said_view(f"{what} recorded", result.note))
