"""GOV.UK Notify: texts through its official client, the template's one field `message`.

Notify's answers map onto the outbox's retry rules: 429 (rate or daily limit) -> retry, after
Retry-After when given; 5xx and network failures (the client reports them as 503) -> retry with
backoff; any other 4xx (a bad number, a revoked key, a template that is not an SMS one) ->
permanent. Error texts carry Notify's error type only: its messages can quote what was sent.
"""

from __future__ import annotations

from typing import Any

from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient

from reviews.model import format_reference
from reviews.outbox import DeliveryError, OutboundItem

TIMEOUT = 10  # seconds: a send must end well inside the outbox's lease


class NotifySender:
    """A reviews.outbox.Sender for platform "notify"; the message id is Notify's id."""

    def __init__(self, api_key: str, template_id: str, *, base_url: str, ca_bundle: str = ""):
        self.template_id = template_id
        self.client = NotificationsAPIClient(api_key, base_url=base_url, timeout=TIMEOUT)
        if ca_bundle:
            self.client.request_session.verify = ca_bundle

    def deliver(self, item: OutboundItem) -> str | None:
        """Send the text; DeliveryError (retry_after / transient / permanent) if Notify says no."""
        try:
            answer = self.client.send_sms_notification(
                phone_number=item.address,
                template_id=self.template_id,
                personalisation={"message": item.message.text},
                reference=format_reference(item.review_id or 0),
            )
        except APIError as error:
            raise _delivery_error(error) from error
        return str(answer.get("id")) if isinstance(answer, dict) and answer.get("id") else None


def _delivery_error(error: APIError) -> DeliveryError:
    if error.response is None:  # the client's "503" for a request that never got an answer
        return DeliveryError("Notify unreachable (network)")
    status = error.status_code
    kind = _error_type(error)
    if status == 429:
        return DeliveryError(f"Notify 429 ({kind})", retry_after=_retry_after(error.response))
    if status >= 500:
        return DeliveryError(f"Notify {status} ({kind})")
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
