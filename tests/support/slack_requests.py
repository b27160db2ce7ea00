"""Requests as Slack sends them: signed bodies for slash commands, button clicks, form submits.

Signing follows Slack's v0 scheme: HMAC-SHA256 over "v0:{timestamp}:{body}" with the signing
secret, sent as X-Slack-Signature with X-Slack-Request-Timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

SIGNING_SECRET = "test-signing-secret"
TEAM = {"id": "T0TRUST", "domain": "trust"}


def sign(body: str, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack sends with `body`."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    base = f"v0:{stamp}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Signature": f"v0={digest}", "X-Slack-Request-Timestamp": stamp}


@dataclass(frozen=True)
class SlackRequest:
    """A body and its headers, ready to POST to /slack/events."""

    body: str
    headers: dict[str, str]

    def retried(self, attempt: int = 1) -> SlackRequest:
        """The same request as Slack's retry of it (re-signed with a fresh timestamp)."""
        headers = {
            **self.headers,
            **sign(self.body),
            "X-Slack-Retry-Num": str(attempt),
            "X-Slack-Retry-Reason": "http_timeout",
        }
        return SlackRequest(self.body, headers)


def _form(fields: dict[str, str], secret: str, timestamp: int | None) -> SlackRequest:
    body = urlencode(fields)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, secret, timestamp)}
    return SlackRequest(body, headers)


def _payload(payload: dict[str, Any], secret: str, timestamp: int | None) -> SlackRequest:
    return _form({"payload": json.dumps(payload)}, secret, timestamp)


def slash_command(
    text: str = "",
    *,
    user_id: str = "U0WARDNURSE",
    user_name: str = "ward.nurse",
    channel_id: str = "C0WARD7",
    response_url: str = "https://hooks.slack.com/commands/T0TRUST/1/x",
    trigger_id: str = "trigger-1",
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
) -> SlackRequest:
    return _form(
        {
            "token": "legacy-unused",
            "team_id": TEAM["id"],
            "team_domain": TEAM["domain"],
            "channel_id": channel_id,
            "channel_name": "ward-7",
            "user_id": user_id,
            "user_name": user_name,
            "command": "/rapidreview",
            "text": text,
            "api_app_id": "A0RAPID",
            "response_url": response_url,
            "trigger_id": trigger_id,
        },
        secret,
        timestamp,
    )


def _user(user_id: str, user_name: str) -> dict[str, str]:
    """The `user` of an interaction payload, as Slack sends it."""
    name = user_name or user_id
    return {"id": user_id, "username": name, "name": name, "team_id": TEAM["id"]}


def button_click(
    action_id: str,
    value: str,
    *,
    user_id: str,
    user_name: str = "",
    channel_id: str = "C0OUTREACH",
    message_ts: str = "1700000000.000001",
    trigger_id: str = "trigger-2",
    response_url: str = "https://hooks.slack.com/actions/T0TRUST/2/y",
    secret: str = SIGNING_SECRET,
) -> SlackRequest:
    """A block_actions payload: someone pressed a button on a message."""
    return _payload(
        {
            "type": "block_actions",
            "team": TEAM,
            "user": _user(user_id, user_name),
            "api_app_id": "A0RAPID",
            "token": "legacy-unused",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": False,
            },
            "trigger_id": trigger_id,
            "channel": {"id": channel_id, "name": "outreach"},
            "message": {"type": "message", "ts": message_ts, "text": "card"},
            "response_url": response_url,
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "review_actions",
                    "value": value,
                    "type": "button",
                    "action_ts": str(time.time()),
                }
            ],
        },
        secret,
        None,
    )


def view_submission(
    callback_id: str,
    values: dict[str, dict[str, dict[str, Any]]],
    *,
    user_id: str,
    user_name: str = "",
    view_id: str = "V0FORM1",
    private_metadata: str = "",
    secret: str = SIGNING_SECRET,
) -> SlackRequest:
    """A view_submission payload; `values` is Slack's state.values (block -> action -> value)."""
    return _payload(
        {
            "type": "view_submission",
            "team": TEAM,
            "user": _user(user_id, user_name),
            "api_app_id": "A0RAPID",
            "token": "legacy-unused",
            "trigger_id": "trigger-3",
            "view": {
                "id": view_id,
                "team_id": TEAM["id"],
                "type": "modal",
                "callback_id": callback_id,
                "private_metadata": private_metadata,
                "hash": "h1",
                "state": {"values": values},
            },
            "response_urls": [],
        },
        secret,
        None,
    )


def event(event: dict[str, Any], *, secret: str = SIGNING_SECRET) -> SlackRequest:
    """An Events API callback (JSON body) carrying `event`, e.g. app_home_opened."""
    body = json.dumps(
        {
            "token": "legacy-unused",
            "team_id": TEAM["id"],
            "api_app_id": "A0RAPID",
            "type": "event_callback",
            "event_id": f"Ev{int(time.time() * 1000)}",
            "event_time": int(time.time()),
            "event": event,
        }
    )
    return SlackRequest(body, {"Content-Type": "application/json", **sign(body, secret)})


def text_value(value: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value or None}


def choice(value: str | None) -> dict[str, Any]:
    selected = {"value": value, "text": {"type": "plain_text", "text": value}} if value else None
    return {"type": "static_select", "selected_option": selected}


def radio(value: str | None) -> dict[str, Any]:
    selected = {"value": value, "text": {"type": "plain_text", "text": value}} if value else None
    return {"type": "radio_buttons", "selected_option": selected}


def request_form(**changes: str) -> dict[str, dict[str, dict[str, Any]]]:
    """The request form's state.values, filled in as a ward nurse would; `changes` override."""
    from tests.support.builders import FILLED_FORM

    fields = {**FILLED_FORM, **changes}
    choices = ("caller", "concern_kind")
    return {
        name: {"value": radio(value) if name in choices else text_value(value)}
        for name, value in fields.items()
    }


def cancel_submission(reason: str, *, user_id: str, review: int = 1) -> SlackRequest:
    """The cancel form sent for `review` with `reason`."""
    from handlers.slack.forms import CANCEL_FORM

    return view_submission(
        CANCEL_FORM,
        {"reason": {"value": text_value(reason)}},
        user_id=user_id,
        view_id="V0CANCEL",
        private_metadata=json.dumps({"review": review}),
    )


@dataclass
class SlackBot:
    """The real bolt App behind the real HTTP server, talking to a FakeSlack; for tests."""

    services: Any  # reviews.context.Services
    client: Any  # slack_sdk.WebClient pointed at the fake
    events_url: str

    def post(self, request: SlackRequest) -> Any:
        """POST `request` to /slack/events; the requests.Response."""
        import requests

        return requests.post(
            self.events_url, data=request.body.encode(), headers=request.headers, timeout=10
        )

    def drain(self) -> int:
        """Deliver everything queued through the real SlackSender."""
        from handlers.slack import SlackSender
        from reviews.outbox import drain

        return drain(self.services, {"slack": SlackSender(self.client)})


@contextmanager
def slack_bot(services: Any, fake: Any, **settings: Any) -> Iterator[SlackBot]:
    """Serve `services` to Slack over HTTP on a free loopback port, with the fake as Slack."""
    from bot import make_slack_client
    from handlers.http import make_http_app
    from handlers.slack import AfterAck, build_slack_app, slack_routes
    from settings import Settings
    from tests.support.http import serve

    config = Settings(
        slack_bot_token="xoxb-test",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake.url,
        outreach_channel="C0OUTREACH",
        digest_channel="C0DIGEST",
        **settings,
    )
    client = make_slack_client(config)  # the client bot.py builds
    after_ack = AfterAck()
    app = build_slack_app(services, config, client, after_ack)
    routes = slack_routes(app, after_ack)
    with serve(make_http_app(services.db, routes, health=services.health)) as base:
        yield SlackBot(services, client, f"{base}/slack/events")


OUTREACH_NURSE = "U01ALEX"  # Alex Carter, on the outreach rota in outreach_slack_bot


@contextmanager
def outreach_slack_bot(db: Any, clock: Any, fake: Any) -> Iterator[SlackBot]:
    """slack_bot on `db` and `clock`, with Alex Carter holding outreach since an hour ago."""
    from datetime import timedelta

    from tests.support.builders import make_services, on_rota

    start = clock.now() - timedelta(hours=1)
    on_rota(db, "outreach", "Alex Carter", OUTREACH_NURSE, start=start)
    with slack_bot(make_services(db, clock), fake) as bot:
        yield bot
