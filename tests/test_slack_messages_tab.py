"""The Messages tab (manifest.yml): a nurse who types to the bot gets the help text and a button
that opens the request form, over real signed HTTP; the bot's own messages get no answer."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from handlers.slack.direct import OPEN_FORM
from handlers.slack.forms import REQUEST_FORM
from storage.database import Database
from tests.support.builders import make_services
from tests.support.clock import FrozenClock
from tests.support.fake_slack import FakeSlack
from tests.support.process import ROOT
from tests.support.slack_requests import SlackBot, button_click, event, slack_bot

NURSE = "U0WARDNURSE"


@pytest.fixture
def bot(db: Database, clock: FrozenClock, fake: FakeSlack) -> Iterator[SlackBot]:
    with slack_bot(make_services(db, clock), fake) as bot:
        yield bot


def direct_message(text: str, **extra: str) -> dict:
    return {
        "type": "message",
        "channel": "D0NURSE",
        "channel_type": "im",
        "user": NURSE,
        "text": text,
        "ts": "1700000000.000100",
        **extra,
    }


def test_a_direct_message_gets_the_help_and_a_button_that_opens_the_form(
    bot: SlackBot, fake: FakeSlack
) -> None:
    assert bot.post(event(direct_message("hello, how do I get outreach?"))).status_code == 200
    [answer] = fake.wait_for("chat.postMessage")
    assert answer.body["channel"] == "D0NURSE"
    assert "/rapidreview" in answer.body["text"]
    [buttons] = [b for b in answer.body["blocks"] if b["type"] == "actions"]
    assert buttons["elements"][0]["action_id"] == OPEN_FORM

    pressed = button_click(OPEN_FORM, "", user_id=NURSE, channel_id="D0NURSE")
    assert bot.post(pressed).status_code == 200
    [opened] = fake.wait_for("views.open")
    assert opened.body["view"]["callback_id"] == REQUEST_FORM


def test_the_bots_own_messages_and_edits_get_no_answer(bot: SlackBot, fake: FakeSlack) -> None:
    for quiet in (
        direct_message("Rapid review", bot_id="B0RAPID"),
        direct_message("edited", subtype="message_changed"),
        {**direct_message("in a channel"), "channel_type": "channel", "channel": "C0WARD"},
    ):
        assert bot.post(event(quiet)).status_code == 200
    assert bot.post(event(direct_message("help"))).status_code == 200
    fake.wait_for("chat.postMessage")
    time.sleep(0.5)  # bolt answers events on worker threads: give a wrong answer time to show
    assert len(fake.called("chat.postMessage")) == 1  # the last one only


def test_the_manifest_delivers_direct_messages_to_the_bot() -> None:
    manifest = (ROOT / "manifest.yml").read_text()
    assert "messages_tab_enabled: true" in manifest
    assert "      - message.im\n" in manifest and "      - im:history\n" in manifest
