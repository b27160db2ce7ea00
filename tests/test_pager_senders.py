"""The two text senders against a fake GOV.UK Notify and a fake paging gateway over real HTTP:
what goes on the wire, how a gateway checks it, and how each answer maps onto the outbox's
retry rules."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import socket

import pytest

from handlers.pager.gateway import GatewaySender, verify_signature
from handlers.pager.notify import NotifySender
from reviews.messages import Message
from reviews.outbox import DeliveryError, OutboundItem, check_platforms
from tests.support.builders import make_services
from tests.support.fake_texts import (
    NOTIFY_API_KEY,
    NOTIFY_SERVICE_ID,
    NOTIFY_TEMPLATE_ID,
    PAGER_SECRET,
)

TEXT = (
    "RR-0042 URGENT rapid review, Ward 7 bed 12: NOT YET ACKNOWLEDGED (escalation level 1). "
    "Acknowledge"
)


def page(to: str = "BLEEP-2345") -> OutboundItem:
    return OutboundItem("text", to, Message(text=TEXT, level=1), None, 42)


def test_a_page_is_signed_json_the_gateway_can_verify(pager):
    message_id = GatewaySender(pager.url + "/page", PAGER_SECRET).deliver(page())
    call = pager.calls[0]
    assert message_id == "pager-1"
    assert call.path == "/page" and call.headers["content-type"] == "application/json"
    assert call.body == {"to": "BLEEP-2345", "text": TEXT, "reference": "RR-0042", "level": 1}
    signature = call.headers["x-rapidreview-signature"]
    # What a gateway written in any language does: HMAC-SHA256 of the raw body, hex.
    expected = hmac.new(PAGER_SECRET.encode(), call.raw, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    assert verify_signature(call.raw, signature, PAGER_SECRET)


def test_a_page_tried_again_carries_the_same_idempotency_key(pager):
    """For a gateway that drops a page it has already taken: the key names the outbox row."""
    sender = GatewaySender(pager.url + "/page", PAGER_SECRET)
    first = dataclasses.replace(page(), tags=("7@1733450000123456",))
    pager.fail(status=502)
    with pytest.raises(DeliveryError):
        sender.deliver(first)
    sender.deliver(first)
    sender.deliver(dataclasses.replace(page(), tags=("8@1733450000999999",)))
    keys = [call.headers["idempotency-key"] for call in pager.calls]
    assert keys == ["7@1733450000123456", "7@1733450000123456", "8@1733450000999999"]


def test_a_forged_or_altered_page_fails_verification(pager):
    GatewaySender(pager.url + "/page", PAGER_SECRET).deliver(page())
    call = pager.calls[0]
    signature = call.headers["x-rapidreview-signature"]
    altered = json.dumps(call.body | {"to": "BLEEP-9999"}).encode()
    assert not verify_signature(altered, signature, PAGER_SECRET)
    assert not verify_signature(call.raw, signature, "another-secret")
    assert not verify_signature(call.raw, "", PAGER_SECRET)


@pytest.mark.parametrize(
    ("status", "retry_after", "permanent", "reason"),
    [
        (429, 30, False, "paging gateway 429"),
        (503, None, False, "paging gateway 503"),
        (408, None, False, "paging gateway 408"),
        (400, None, True, "paging gateway refused the page (400)"),
        (404, None, True, "paging gateway refused the page (404)"),
    ],
)
def test_gateway_answers_map_onto_retries(pager, status, retry_after, permanent, reason):
    pager.fail(status=status, retry_after=retry_after)
    with pytest.raises(DeliveryError) as raised:
        GatewaySender(pager.url + "/page", PAGER_SECRET).deliver(page())
    assert str(raised.value) == reason
    assert raised.value.permanent is permanent
    assert raised.value.retry_after == retry_after


def test_a_gateway_refusing_our_signature_is_the_bots_credentials_not_one_page(pager):
    pager.fail(status=401)
    with pytest.raises(DeliveryError) as raised:
        GatewaySender(pager.url + "/page", "a-secret-the-gateway-no-longer-has").deliver(page())
    error = raised.value
    assert (error.credentials, error.permanent) == (True, False)
    assert str(error) == "paging gateway refused the bot's signature (401)"


def test_a_gateway_forbidding_one_page_fails_that_page_not_every_page(pager):
    """A gateway may answer 403 for a pager it may not page (a locum's, not yet set up): held
    as the bot's credentials, every page for everyone would wait, and /healthz say 503."""
    pager.fail(status=403)
    with pytest.raises(DeliveryError) as raised:
        GatewaySender(pager.url + "/page", PAGER_SECRET).deliver(page())
    error = raised.value
    assert (error.credentials, error.permanent) == (False, True)
    assert str(error) == "paging gateway refused the page (403)"


def test_an_unreachable_gateway_is_retried(pager):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{free.getsockname()[1]}/page"
    with pytest.raises(DeliveryError) as raised:
        GatewaySender(url, PAGER_SECRET).deliver(page())
    assert not raised.value.permanent
    assert str(raised.value) == "paging gateway unreachable: ConnectionError"


def test_a_gateway_too_slow_to_answer_is_not_paged_again_at_once(monkeypatch):
    """A gateway that takes the page but answers after our timeout: the page may have arrived,
    so it is tried again (same Idempotency-Key) no sooner than the time we waited, not at the
    outbox's 1, 2, 4 s backoff, which would page the person again and again."""
    monkeypatch.setattr("handlers.pager.gateway.TIMEOUT", 0.3)
    with socket.socket() as silent:  # takes the connection and the page, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/page"
        with pytest.raises(DeliveryError) as raised:
            GatewaySender(url, PAGER_SECRET).deliver(page())
    error = raised.value
    assert error.uncertain and not error.permanent and error.retry_after == 0.3
    assert str(error) == "paging gateway did not answer within 0.3 s (the page may have arrived)"


def test_a_text_goes_through_notify_with_the_template_and_reference(notify):
    sender = NotifySender(NOTIFY_API_KEY, NOTIFY_TEMPLATE_ID, base_url=notify.url)
    message_id = sender.deliver(page("+447700900456"))
    call = notify.calls[0]
    assert call.status == 201 and message_id
    assert call.body == {
        "phone_number": "+447700900456",
        "template_id": NOTIFY_TEMPLATE_ID,
        "personalisation": {"message": TEXT},
        "reference": "RR-0042",
    }


def test_a_text_standing_for_outbox_rows_names_them_in_its_reference(notify):
    sender = NotifySender(NOTIFY_API_KEY, NOTIFY_TEMPLATE_ID, base_url=notify.url)
    sender.deliver(dataclasses.replace(page("+447700900456"), tags=("7@1733450000123456",)))
    together = OutboundItem(
        "direct", "+447700900456", Message(text=TEXT), None, None, ("7@1", "8@2")
    )
    sender.deliver(together)
    assert [call.body["reference"] for call in notify.calls] == [
        "RR-0042 7@1733450000123456",
        "7@1,8@2",  # several requests' messages as one text: no single request's reference
    ]


@pytest.mark.parametrize(
    ("status", "retry_after", "permanent", "uncertain", "reason"),
    [
        (429, 60, False, False, "Notify 429 (RateLimitError: no)"),
        (500, None, False, True, "Notify 500 (Error: no)"),
        (400, None, True, False, "Notify refused the text: 400 (Error: no)"),
    ],
)
def test_notify_answers_map_onto_retries(notify, status, retry_after, permanent, uncertain, reason):
    """`uncertain`: Notify may have taken the text before failing, so the retry looks first."""
    notify.fail(status=status, retry_after=retry_after)
    sender = NotifySender(NOTIFY_API_KEY, NOTIFY_TEMPLATE_ID, base_url=notify.url)
    with pytest.raises(DeliveryError) as raised:
        sender.deliver(page("+447700900456"))
    assert (str(raised.value), raised.value.permanent) == (reason, permanent)
    assert raised.value.retry_after == retry_after
    assert raised.value.uncertain is uncertain


def test_an_answer_notify_gave_but_nobody_can_read_may_have_been_taken(notify):
    """A 2xx that is not JSON (a proxy's page, say): Notify may have the text, so it is looked
    for and tried again, never given up as refused."""
    notify.fail(status=201, body="<html>Welcome to the trust's proxy</html>")
    sender = NotifySender(NOTIFY_API_KEY, NOTIFY_TEMPLATE_ID, base_url=notify.url)
    with pytest.raises(DeliveryError) as raised:
        sender.deliver(page("+447700900456"))
    assert raised.value.uncertain and not raised.value.permanent
    assert str(raised.value) == "Notify 201 with an answer that is not JSON"


def test_notifys_reason_is_kept_without_any_number_in_it(notify):
    message = "Can't send to this recipient using a team-only API key (+44 7700 900456)"
    notify.fail(
        status=400, body=json.dumps({"errors": [{"error": "BadRequestError", "message": message}]})
    )
    sender = NotifySender(NOTIFY_API_KEY, NOTIFY_TEMPLATE_ID, base_url=notify.url)
    with pytest.raises(DeliveryError) as raised:
        sender.deliver(page("+447700900456"))
    assert str(raised.value) == (
        "Notify refused the text: 400 (BadRequestError: Can't send to this recipient using a "
        "team-only API key ([number]))"
    )


def test_a_wrong_notify_key_is_the_bots_credentials_and_never_echoed(notify):
    wrong = NOTIFY_API_KEY[:-36] + "00000000-0000-4000-8000-000000000000"
    sender = NotifySender(wrong, NOTIFY_TEMPLATE_ID, base_url=notify.url)
    with pytest.raises(DeliveryError) as raised:
        sender.deliver(page("+447700900456"))
    assert (str(raised.value), raised.value.credentials, raised.value.permanent) == (
        "Notify refused the API key: 403 (AuthError: bad token)",
        True,
        False,
    )
    assert wrong[-36:] not in str(raised.value)
    assert NOTIFY_SERVICE_ID not in str(raised.value)


def test_notify_unreachable_is_retried():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{free.getsockname()[1]}"
    sender = NotifySender(NOTIFY_API_KEY, NOTIFY_TEMPLATE_ID, base_url=url)
    with pytest.raises(DeliveryError) as raised:
        sender.deliver(page("+447700900456"))
    assert not raised.value.permanent and raised.value.uncertain
    assert str(raised.value) == "Notify unreachable (network)"


def test_a_wrong_notify_key_shows_in_healthz_before_any_text_needs_it(notify, db, clock):
    services = make_services(db, clock)
    good = NotifySender(NOTIFY_API_KEY, NOTIFY_TEMPLATE_ID, base_url=notify.url)
    check_platforms(services, {"notify": good})
    assert services.health.problems() == []
    wrong = NOTIFY_API_KEY[:-36] + "00000000-0000-4000-8000-000000000000"
    check_platforms(
        services, {"notify": NotifySender(wrong, NOTIFY_TEMPLATE_ID, base_url=notify.url)}
    )
    assert services.health.problems() == [
        "notify refuses the bot's credentials (Notify refused the API key: 403 "
        "(AuthError: bad token))"
    ]
    assert notify.texts() == []
