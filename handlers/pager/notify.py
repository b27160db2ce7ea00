"""GOV.UK Notify: texts through its official client, the template's one field `message`.

Notify's answers map onto the outbox's retry rules: 429 (rate or daily limit) -> retry, after
Retry-After when given; 5xx and network failures (the client reports them as 503) -> retry with
backoff; any other 4xx (a bad number, a revoked key, a template that is not an SMS one) ->
permanent. Error texts carry Notify's error type only: its messages can quote what was sent.

Sent once, though an answer is lost: each text's reference is the request's (RR-0042) followed
by its outbox rows' tags (reviews.outbox.outbox_tag; no patient details). When an earlier
attempt may have gone unseen (a 5xx or a network failure after Notify took it, a drainer killed
mid-send), the outbox asks `arrived` first: Notify's newest texts (GET /v2/notifications) are
read for the tags. A 429 on that look waits as Notify asks; any other failure sends it again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import requests
from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient

from reviews.model import format_reference
from reviews.outbox import DeliveryError, OutboundItem, unseen

TIMEOUT = 10  # seconds: a send must end well inside the outbox's lease
# Seconds the look may take: it only saves a duplicate, so it must not hold up the send long.
LOOK_TIMEOUT = 5
# Notify lists a service's texts newest first, 250 to a page: one page is read. A trust sends
# far fewer texts than that in the minutes before a retry.


class NotifySender:
    """A reviews.outbox.Sender (and Looker) for platform "notify"; the message id is Notify's
    id."""

    def __init__(
        self,
        api_key: str,
        template_id: str,
        *,
        base_url: str,
        ca_bundle: str = "",
        timeout: float = TIMEOUT,
    ):
        self.template_id = template_id
        self.timeout = timeout
        # The client logs each failed call's whole error message at WARNING, and Notify's
        # messages can quote what was sent; the outbox logs each failure itself, without it.
        logging.getLogger("notifications_python_client").setLevel(logging.ERROR)
        self.client = NotificationsAPIClient(api_key, base_url=base_url, timeout=timeout)
        self.looker = NotificationsAPIClient(
            api_key, base_url=base_url, timeout=min(LOOK_TIMEOUT, timeout)
        )
        if ca_bundle:
            self.client.request_session.verify = ca_bundle
            self.looker.request_session.verify = ca_bundle

    def deliver(self, item: OutboundItem) -> str | None:
        """Send the text; DeliveryError (retry_after / transient / permanent) if Notify says no."""
        try:
            answer = self.client.send_sms_notification(
                phone_number=item.address,
                template_id=self.template_id,
                personalisation={"message": item.message.text},
                reference=reference(item),
            )
        except APIError as error:
            raise _delivery_error(error, late=self.timeout) from error
        return str(answer.get("id")) if isinstance(answer, dict) and answer.get("id") else None

    def arrived(self, items: Sequence[OutboundItem]) -> dict[str, str]:
        """reviews.outbox.Looker: {tag: Notify's id} for the items' tags found in the
        references of the service's newest texts."""
        tags = {tag for item in items for tag in item.tags}
        if not tags:
            return {}
        try:
            listed = self.looker.get_all_notifications(template_type="sms")
        except APIError as error:
            failure = _delivery_error(error)
            if error.status_code == 429:
                raise failure from error  # wait as asked, then look
            return unseen(tags, failure)
        found = {}
        for notification in listed.get("notifications") or []:
            tagged = _tags(str(notification.get("reference") or ""))
            for tag in tags.intersection(tagged):
                found[tag] = str(notification.get("id"))
        return found


def reference(item: OutboundItem) -> str:
    """ "RR-0042 12@1733450000123456": the request's reference (none for a text standing for
    several), then the outbox rows the text stands for."""
    request = format_reference(item.review_id) if item.review_id else ""
    return " ".join(part for part in (request, ",".join(item.tags)) if part)


def _tags(text: str) -> list[str]:
    """The outbox tags a reference carries: its last word's, when it names any."""
    last = text.rsplit(" ", 1)[-1]
    return [tag for tag in last.split(",") if "@" in tag]


def _delivery_error(error: APIError, *, late: float | None = None) -> DeliveryError:
    """The outbox's view of a failed call. A network failure or a 5xx may have come after
    Notify took the text (uncertain); one we stopped waiting for after `late` seconds is tried
    again no sooner than that, so a text Notify is still taking is there to be found."""
    if error.response is None:  # the client's "503" for a request that never got an answer
        timed_out = isinstance(error.__cause__, requests.ReadTimeout)
        return DeliveryError(
            "Notify unreachable (network)",
            uncertain=True,
            retry_after=late if timed_out else None,
        )
    status = error.status_code
    kind = _error_type(error)
    if status == 429:
        return DeliveryError(f"Notify 429 ({kind})", retry_after=_retry_after(error.response))
    if status >= 500:
        return DeliveryError(f"Notify {status} ({kind})", uncertain=True)
    return DeliveryError(f"Notify refused the text: {status} ({kind})", permanent=True)


def _error_type(error: APIError) -> str:
    try:
        errors = error.response.json().get("errors") or []  # type: ignore[union-attr]
        return str(errors[0].get("error", "error"))[:60]
    except (AttributeError, ValueError, IndexError, TypeError):
        return "error"


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("Retry-After", "") if response is not None else ""
    return float(value) if value.strip().isdigit() else None
