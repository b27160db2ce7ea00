"""The trust's own paging gateway: one signed JSON POST per page (docs/escalation.md).

Body {"to", "text", "reference", "level"}; header X-Rapidreview-Signature: sha256=<hex
HMAC-SHA256 of the exact body bytes with PAGER_WEBHOOK_SECRET>. The gateway verifies it with
verify_signature() or its own three lines of the same. 2xx: sent. 408, 429 (honouring
Retry-After) and 5xx, and network failures: retried; no answer within TIMEOUT: retried no
sooner than TIMEOUT later, as the page may have arrived. 401: our signature refused
(PAGER_WEBHOOK_SECRET changed at one end only): every page waits until it is mended, and
/healthz says so. Any other answer, 403 included: permanent for that page alone (reported to
the digest channel). A gateway may answer 403 for one pager it may not page; taken as the
bot's credentials, that would hold every page for everyone.

Header Idempotency-Key: the outbox rows the page stands for (reviews.outbox.outbox_tag), the
same on every attempt at them. A gateway has no way to tell us that a page whose answer was lost
arrived, so such a page is sent again; a gateway that keeps the keys it has seen (as the IETF's
Idempotency-Key header proposes) can drop the second.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import requests

from reviews.model import format_reference
from reviews.outbox import DeliveryError, OutboundItem

SIGNATURE_HEADER = "X-Rapidreview-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TIMEOUT = 10.0  # seconds: a send must end well inside the outbox's lease


def sign(body: bytes, secret: str) -> str:
    """The header value for `body`: "sha256=" and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str, secret: str) -> bool:
    """What a gateway does with a page: True only if `header` signs exactly `body`."""
    return hmac.compare_digest(sign(body, secret), header or "")


class GatewaySender:
    """A reviews.outbox.Sender for platform "pager"; the message id is the gateway's `id`."""

    def __init__(self, url: str, secret: str, *, ca_bundle: str = ""):
        self.url, self.secret = url, secret
        self.session = requests.Session()
        if ca_bundle:
            self.session.verify = ca_bundle

    def deliver(self, item: OutboundItem) -> str | None:
        """POST the page; DeliveryError (retry_after / transient / permanent) if it did not go."""
        body = json.dumps(
            {
                "to": item.address,
                "text": item.message.text,
                "reference": format_reference(item.review_id or 0),
                "level": item.message.level,
            }
        ).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, self.secret)}
        if item.tags:
            headers[IDEMPOTENCY_HEADER] = ",".join(item.tags)
        try:
            response = self.session.post(self.url, data=body, headers=headers, timeout=TIMEOUT)
        except requests.ReadTimeout as error:
            # It may have taken the page and not answered in time. Tried again (with the same
            # Idempotency-Key) no sooner than we waited, not every second or two: a gateway that
            # is slow but working would otherwise page the person again at each retry.
            raise DeliveryError(
                f"paging gateway did not answer within {TIMEOUT:g} s (the page may have arrived)",
                uncertain=True,
                retry_after=TIMEOUT,
            ) from error
        except requests.RequestException as error:
            raise DeliveryError(f"paging gateway unreachable: {type(error).__name__}") from error
        if response.ok:
            return _gateway_id(response)
        status = response.status_code
        if status == 429:
            raise DeliveryError(
                "paging gateway 429", retry_after=_seconds(response), throttled=True
            )
        if status == 408 or status >= 500:
            raise DeliveryError(f"paging gateway {status}")
        if status == 401:  # our signature refused: a secret changed at one end only
            raise DeliveryError(
                f"paging gateway refused the bot's signature ({status})", credentials=True
            )
        raise DeliveryError(f"paging gateway refused the page ({status})", permanent=True)


def _gateway_id(response: requests.Response) -> str | None:
    try:
        answer = response.json()
    except ValueError:
        return None
    value = answer.get("id") if isinstance(answer, dict) else None
    return str(value)[:200] if value is not None else None


def _seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None
