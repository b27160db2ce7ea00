"""Slack over Socket Mode, the manifest's default: `python bot.py` with SLACK_APP_TOKEN and
SLACK_BOT_TOKEN and no signing secret takes commands, forms and buttons over the socket that
apps.connections.open names, with no public URL (CONTRACT.md "Run modes")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from handlers.slack.forms import REQUEST_FORM
from storage.database import Database
from tests.support.builders import OUTREACH, on_rota
from tests.support.fake_microsoft import FakeMicrosoft
from tests.support.fake_slack import FakeSlack
from tests.support.fake_socket_mode import FakeSocketMode
from tests.support.process import BotProcess, bot_environment, free_port
from tests.support.slack_requests import (
    button_click,
    request_form,
    slash_command,
    view_submission,
)
from tests.support.teams_activities import NURSE as NURSE_ON_TEAMS
from tests.support.teams_activities import activity, teams_environment
from tests.support.waiting import eventually

NURSE = "U0WARDNURSE"


@pytest.fixture
def slack() -> Iterator[tuple[FakeSlack, FakeSocketMode]]:
    with FakeSlack() as fake, FakeSocketMode() as socket:
        fake.socket_url = socket.url
        yield fake, socket


def start_socket_mode_bot(fake: FakeSlack, database_url: str, **settings: str) -> BotProcess:
    env = bot_environment(
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_APP_TOKEN="xapp-test",
        SLACK_API_URL=fake.url,
        OUTREACH_CHANNEL="C0OUTREACH",
        DATABASE_URL=database_url,
        LOG_LEVEL="INFO",
        **settings,
    )
    bot = BotProcess(env=env)
    try:
        bot.wait_for("Slack over Socket Mode", timeout=60)
    except AssertionError:
        bot.stop()
        raise
    return bot


def cards(fake: FakeSlack) -> list[Any]:
    """The request cards posted in the outreach channel (not thread lines or notices)."""
    return [
        c
        for c in fake.called("chat.postMessage")
        if c.body["channel"] == "C0OUTREACH" and c.body.get("blocks") and "thread_ts" not in c.body
    ]


@pytest.mark.slow
def test_a_request_is_raised_and_acknowledged_over_socket_mode(
    slack: tuple[FakeSlack, FakeSocketMode], database_url: str
) -> None:
    fake, socket = slack
    db = Database(database_url)
    on_rota(db, "outreach", "Alex Carter", OUTREACH.user_id, datetime.now(UTC) - timedelta(hours=1))
    db.dispose()
    bot = start_socket_mode_bot(fake, database_url)
    try:
        socket.wait_connected()
        assert fake.called("apps.connections.open")[0].headers["Authorization"] == (
            "Bearer xapp-test"
        )

        helped = socket.send("slash_commands", slash_command("help"))
        assert "`/rapidreview open`" in json.dumps(helped["payload"])

        socket.send("slash_commands", slash_command("", trigger_id="trig-7"))
        [opened] = fake.wait_for("views.open", timeout=10)
        assert opened.body["trigger_id"] == "trig-7"
        assert opened.body["view"]["callback_id"] == REQUEST_FORM

        answer = socket.send(
            "interactive", view_submission(REQUEST_FORM, request_form(), user_id=NURSE)
        )
        assert "RR-0001 raised" in json.dumps(answer["payload"])
        card = eventually(lambda: next(iter(cards(fake)), None), "the card", timeout=15)
        assert "9990000018" not in json.dumps(card.body)

        socket.send(
            "interactive",
            button_click(
                "review_acknowledge",
                "1",
                user_id=OUTREACH.user_id,
                message_ts=card.answer["ts"],
            ),
        )
        eventually(
            lambda: any("Acknowledged" in json.dumps(c.body) for c in fake.called("chat.update")),
            timeout=15,
        )
    finally:
        bot.stop()
    assert not [line for line in bot.log if "Traceback" in line]


@pytest.mark.slow
def test_with_teams_too_socket_mode_also_serves_teams_and_healthz_over_http(
    slack: tuple[FakeSlack, FakeSocketMode], database_url: str, tmp_path: Path
) -> None:
    fake, socket = slack
    port = free_port()
    with FakeMicrosoft(tmp_path) as ms:
        bot = start_socket_mode_bot(
            fake,
            database_url,
            **teams_environment(ms),
            REQUESTS_CA_BUNDLE=str(ms.ca_file),
            HOST="127.0.0.1",
            PORT=str(port),
        )
        try:
            socket.wait_connected()
            base = f"http://127.0.0.1:{port}"
            health = eventually(
                lambda: requests.get(f"{base}/healthz", timeout=5),
                "the HTTP listener",
                ignoring=(requests.ConnectionError,),
            )
            assert health.status_code == 200 and health.json()["database"] == "ok"
            body = activity(ms, NURSE_ON_TEAMS, text="help")
            token = ms.token(service_url=body["serviceUrl"])
            answer = requests.post(
                f"{base}/api/messages",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert answer.status_code == 200
            eventually(lambda: any("`rota`" in json.dumps(c.body) for c in ms.connector_calls()))
            unsigned = requests.post(f"{base}/api/messages", json={}, timeout=10)
            assert unsigned.status_code == 401
            assert "`/rapidreview open`" in json.dumps(
                socket.send("slash_commands", slash_command("help"))["payload"]
            )
        finally:
            bot.stop()
    assert not [line for line in bot.log if "Traceback" in line]
