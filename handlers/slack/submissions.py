"""Form submissions: the request, the outcome, the cancellation.

Each is stored BEFORE Slack is answered, so "RR-0042 raised" is only said once it is true.
The view id with what was sent is the submission key: Slack's retry of one submission finds the
first review, while corrected details sent again on the same form raise their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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
from handlers.slack.people import slack_user
from reviews import service
from reviews.context import Actor, Services
from reviews.model import (
    FormErrors,
    fingerprint,
    validate,
    validate_outcome,
    validate_reason,
)
from settings import Settings

log = logging.getLogger(__name__)


def register(app: App, services: Services, settings: Settings) -> None:
    fallback = services.fallback_contact

    @app.view(REQUEST_FORM)
    def submit_request(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            request = validate(read_request(view["state"]["values"], services.wards))
        except FormErrors as problems:
            ack(response_action="errors", errors=problems.errors)
            return
        except Exception as error:  # noqa: BLE001 - a form we cannot read must still be answered
            log.error("request form from Slack unreadable: %s", type(error).__name__)
            ack(response_action="update", view=not_recorded_view(fallback))
            return

        def raise_it() -> service.Result:
            return service.raise_review(
                services=services,
                request=request,
                by=slack_user(body["user"]),  # named from the rota in its transaction
                submission_key=f"slack:{view['id']}:{fingerprint(request)}",
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
        def record(values: dict[str, Any]) -> Callable[[Actor], service.Result]:
            outcome, detail = validate_outcome(
                *(field_value(values, name) for name in ("outcome", "destination", "note"))
            )
            return lambda by: service.record_outcome(
                services=services, review_id=_review_id(view), by=by, outcome=outcome, detail=detail
            )

        _submit(ack, services, "Outcome", record, body, view)

    @app.view(CANCEL_FORM)
    def submit_cancel(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        def cancel(values: dict[str, Any]) -> Callable[[Actor], service.Result]:
            reason = validate_reason(field_value(values, "reason"))
            return lambda by: service.cancel(
                services=services, review_id=_review_id(view), by=by, reason=reason
            )

        _submit(ack, services, "Cancel", cancel, body, view)


def _review_id(view: dict[str, Any]) -> int:
    return int(metadata(view)["review"])


def _submit(
    ack: Ack,
    services: Services,
    what: str,
    read: Callable[[dict[str, Any]], Callable[[Actor], service.Result]],
    body: dict[str, Any],
    view: dict[str, Any],
) -> None:
    """Read the form (its mistakes go back on its fields), then make the change."""
    try:
        change = read(view["state"]["values"])
    except FormErrors as problems:
        ack(response_action="errors", errors=problems.errors)
        return
    except Exception as error:  # noqa: BLE001 - a form we cannot read must still be answered
        log.warning("%s form from Slack unreadable: %s", what, type(error).__name__)
        ack(response_action="update", view=_nothing_recorded(what, services))
        return
    _change(ack, services, what, change, body["user"])


def _change(
    ack: Ack,
    services: Services,
    what: str,
    change: Callable[[Actor], service.Result],
    user: dict[str, Any],
) -> None:
    """Run `change(by)` and answer the modal with what happened, or plainly why not."""
    try:
        result = within_deadline(lambda: change(slack_user(user)), f"{what} from Slack")
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
        ack(response_action="update", view=_nothing_recorded(what, services))
        return
    ack(response_action="update", view=said_view(f"{what} recorded", result.note))


def _nothing_recorded(what: str, services: Services) -> dict[str, Any]:
    return said_view(
        f"{what} NOT recorded",
        "Nothing was recorded. " + services.fallback_contact,
    )
