"""Texts and pages to on-call staff: GOV.UK Notify and the trust's paging gateway.

Two more reviews.outbox senders, for the outbox platforms "notify" and "pager"; the core
decides when a text goes (reviews/fallback.py) and what it says (reviews/texts.py).
"""

from __future__ import annotations

import logging

from reviews.outbox import Sender
from reviews.policy import Policy
from reviews.texts import NOTIFY, PAGER
from settings import Settings


def text_senders(settings: Settings, ca_bundle: str = "") -> dict[str, Sender]:
    """The configured senders by outbox platform, the gateway first (a trust that runs its own
    gateway means its bleeps to be used)."""
    senders: dict[str, Sender] = {}
    if settings.pager_configured:
        from handlers.pager.gateway import GatewaySender

        senders[PAGER] = GatewaySender(
            settings.pager_webhook_url, settings.pager_webhook_secret, ca_bundle=ca_bundle
        )
    if settings.notify_configured:
        from handlers.pager.notify import NotifySender

        senders[NOTIFY] = NotifySender(
            settings.notify_api_key,
            settings.notify_sms_template_id,
            base_url=settings.notify_base_url,
            ca_bundle=ca_bundle,
        )
    return senders


def announce(settings: Settings, policy: Policy, log: logging.Logger) -> None:
    """Say once, at start, which of Notify and the gateway are configured; warn when the policy
    asks for texts that nothing can send."""
    said = {True: "configured", False: "not configured"}
    log.info(
        "texts and pages: GOV.UK Notify %s, paging gateway %s",
        said[settings.notify_configured],
        said[settings.pager_configured],
    )
    if settings.notify_configured or settings.pager_configured:
        return
    if policy.asks_for_texts():
        log.warning(
            "the escalation policy asks for texts or pages (sms = true or [fallback]), but "
            "neither NOTIFY_API_KEY nor PAGER_WEBHOOK_URL is set: nothing will be texted"
        )
    else:
        log.info("nothing will be texted or paged")
