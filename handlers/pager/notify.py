"""GOV.UK Notify: texts through its official client, the template's one field `message`.

Notify's answers map onto the outbox's retry rules: 429 (rate or daily limit) -> retry, after
Retry-After when given; 5xx, network failures (the client reports them as 503) and a 2xx we
cannot read -> retry with backoff; 403 (a revoked or wrong key) -> the bot's credentials
refused: every text waits until it is mended; any other 4xx (a bad number, a template that is
not an SMS one) -> permanent. Error texts carry Notify's error type and its message with any
long run of digits removed, so never a phone number.

Sent once, though an answer is lost: each text's reference is the request's (RR-0042) followed
by its outbox row's tag (reviews.outbox.outbox_tag; no patient details). When an earlier
attempt may have gone unseen (a 5xx, a network failure or a timeout after Notify may have taken
it, a drainer killed mid-send), the outbox asks `arrived` first: Notify is asked for its texts
with exactly that reference (GET /v2/notifications?reference=...), so the look reads nothing
of any other text. A text found that Notify has since failed to deliver counts as not
arrived, and goes again. A 429 on that look waits as Notify asks; any other failure sends it
again.
"""

from __future__ import annotations

import re
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
# Notify's statuses for a text it took but could not deliver: not arrived, so it goes again.
UNDELIVERED = frozenset({"permanent-failure", "temporary-failure", "technical-failure"})
# The reference the minutely check asks Notify for: no text carries it (theirs start "RR-").
CHECK_REFERENCE = "rapidreview-check"
# A phone or NHS number in one of Notify's error messages: removed before it is logged.
NUMBER = re.compile(r"\+?\d[\d ()-]{5,}\d")


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

    def check(self) -> None:
        """reviews.outbox.check_platforms: ask Notify for texts by a reference none has, so a
        revoked or wrong key shows in /healthz before a text needs it. DeliveryError
        (credentials on a 403, else transient) when Notify will not answer."""
        try:
            self.looker.get_all_notifications(template_type="sms", reference=CHECK_REFERENCE)
        except APIError as error:
            raise _delivery_error(error) from error

    def arrived(self, items: Sequence[OutboundItem]) -> dict[str, str]:
        """reviews.outbox.Looker: {tag: Notify's id} for the items Notify holds a text of,
        asked for by each item's own reference."""
        found: dict[str, str] = {}
        for index, item in enumerate(items):
            if not item.tags:
                continue
            try:
                listed = self.looker.get_all_notifications(
                    template_type="sms", reference=reference(item)
                )
            except APIError as error:
                failure = _delivery_error(error)
                if error.status_code == 429:
                    raise failure from error  # wait as asked, then look
                # Neither this text nor those after it were looked for.
                return found | unseen([t for i in items[index:] for t in i.tags], failure)
            notifications = listed.get("notifications") if isinstance(listed, dict) else None
            for notification in notifications if isinstance(notifications, list) else []:
                if not isinstance(notification, dict) or not notification.get("id"):
                    continue
                if notification.get("status") in UNDELIVERED:
                    continue  # Notify took it but could not deliver it: it goes again
                for tag in set(item.tags).intersection(_tags(str(notification.get("reference")))):
                    found[tag] = str(notification["id"])
        return found


def reference(item: OutboundItem) -> str:
    """The text's Notify reference, e.g. "RR-0042 12@1733450000123456": the request's
    reference, then the outbox row it stands for (rows, comma-separated, were a text ever to
    stand for several)."""
    request = format_reference(item.review_id) if item.review_id else ""
    return " ".join(part for part in (request, ",".join(item.tags)) if part)


def _tags(text: str) -> list[str]:
    """The outbox tags a reference carries: its last word's, when it names any."""
    last = text.rsplit(" ", 1)[-1]
    return [tag for tag in last.split(",") if "@" in tag]


def _delivery_error(error: APIError, *, late: float | None = None) -> DeliveryError:
    """The outbox's view of a failed call. A network failure, a 5xx or a 2xx we cannot read may
    have come after Notify took the text (uncertain); one we stopped waiting for after `late`
    seconds is tried again no sooner than that, so a text Notify is still taking is there to be
    found."""
    if error.response is None:  # the client's "503" for a request that never got an answer
        timed_out = isinstance(error.__cause__, requests.ReadTimeout)
        return DeliveryError(
            "Notify unreachable (network)",
            uncertain=True,
            retry_after=late if timed_out else None,
        )
    status = error.status_code
    kind = _error_type(error)
    if status < 300:  # taken, as far as Notify is concerned, but its answer is unreadable
        return DeliveryError(f"Notify {status} with an answer that is not JSON", uncertain=True)
    if status == 429:
        return DeliveryError(
            f"Notify 429 ({kind})", retry_after=_retry_after(error.response), throttled=True
        )
    if status >= 500:
        return DeliveryError(f"Notify {status} ({kind})", uncertain=True)
    if status == 403:  # Notify's AuthError: a revoked or wrong key, a clock 30 s out; never
        # about one text. Every text waits, /healthz says so, and they go once it is mended.
        return DeliveryError(f"Notify refused the API key: {status} ({kind})", credentials=True)
    return DeliveryError(f"Notify refused the text: {status} ({kind})", permanent=True)


def _error_type(error: APIError) -> str:
    """Notify's error type and message ("BadRequestError: Can't send to this recipient using a
    team-only API key"), any number in it removed; "error" when the answer names none."""
    try:
        first = (error.response.json().get("errors") or [])[0]  # type: ignore[union-attr]
        kind = str(first.get("error", "error"))[:60]
        message = NUMBER.sub("[number]", str(first.get("message") or ""))[:160]
    except (AttributeError, ValueError, IndexError, TypeError):
        return "error"
    return f"{kind}: {message}" if message else kind


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("Retry-After", "") if response is not None else ""
    return float(value) if value.strip().isdigit() else None
