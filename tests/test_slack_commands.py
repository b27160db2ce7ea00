"""`/rapidreview` sub-commands and App Home over HTTP, and the Slack app manifest."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import rotas.view
from handlers.slack import actions, commands, home
from reviews.service import raise_review
from rotas.view import rota_lines
from storage.database import Database
from tests.support.builders import NURSE, make_services, on_rota, request
from tests.support.clock import FrozenClock
from tests.support.fake_slack import FakeSlack, shown
from tests.support.slack_requests import (
    SlackBot,
    button_click,
    event,
    slack_bot,
    slash_command,
)
from tests.support.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[1]
ALEX, NURSE_ID = "U01ALEX", NURSE.user_id


@pytest.fixture
def bot(db: Database, clock: FrozenClock, fake: FakeSlack) -> Iterator[SlackBot]:
    on_rota(db, "outreach", "Alex Carter", ALEX, start=clock.now() - timedelta(hours=1))
    services = make_services(db, clock, managers=frozenset({"mo.manager@nhs.net"}))
    with slack_bot(services, fake) as bot:
        yield bot


def private_reply(bot: SlackBot, fake: FakeSlack, text: str, user_id: str = NURSE_ID) -> str:
    """What the bot answers `/rapidreview text`, privately, through the response_url."""
    before = len(fake.called("response_url"))
    response = bot.post(slash_command(text, user_id=user_id, response_url=fake.response_url()))
    assert response.status_code == 200 and not response.content
    # A manager's digest draws its chart first: seconds on a loaded machine.
    [reply] = fake.wait_for("response_url", before + 1, timeout=15)[before:]
    assert reply.body["response_type"] == "ephemeral"
    return reply.body["text"]


def test_help_and_anything_unknown_get_the_help_privately(bot: SlackBot) -> None:
    for text in ("help", "what is this", "HELP me"):
        response = bot.post(slash_command(text))
        # A plain-text answer to a slash command is shown only to the person who typed it.
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/")
        assert "`/rapidreview open`" in response.text


def test_open_lists_requests_not_yet_closed_oldest_first(
    bot: SlackBot, fake: FakeSlack, clock: FrozenClock
) -> None:
    assert private_reply(bot, fake, "open") == "No open requests."
    for ward in ("Ward 7", "Ward 9", "Ward 3"):
        raise_review(services=bot.services, request=request(ward=ward, nhs_number=""), by=NURSE)
        clock.advance(60)
    from reviews.service import cancel

    cancel(services=bot.services, review_id=2, by=NURSE, reason="wrong patient")
    lines = private_reply(bot, fake, "open").splitlines()
    assert lines[0].startswith("*Open requests* (2)")
    assert lines[1].startswith("• RR-0001") and "Ward 7" in lines[1]
    assert lines[2].startswith("• RR-0003") and "Ward 3" in lines[2]
    assert "07700" not in "\n".join(lines)


def test_digest_is_for_managers_only(
    bot: SlackBot, fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The answer is text: no chart is drawn for it (a child process importing matplotlib,
    # about 2 s of CPU, for a picture thrown away), so none is asked for.
    from reviews import chart_apart

    charts: list[object] = []
    monkeypatch.setattr(chart_apart, "render", lambda **figures: charts.append(figures))
    fake.add_user("U0MANAGER", "Mo Manager", "mo.manager@nhs.net")
    assert "Only managers" in private_reply(bot, fake, "digest")
    digest = private_reply(bot, fake, "digest", user_id="U0MANAGER")
    assert "Only managers" not in digest and "Rapid review digest" in digest
    assert charts == []


def test_rota_shows_who_holds_each_role(bot: SlackBot, fake: FakeSlack) -> None:
    assert "Alex Carter" in private_reply(bot, fake, "rota")


def test_rota_cover_needs_an_at_mention(bot: SlackBot, fake: FakeSlack) -> None:
    assert "@mention" in private_reply(bot, fake, "rota cover outreach Sam")


def test_rota_cover_records_the_mentioned_person(
    bot: SlackBot, fake: FakeSlack, db: Database, clock: FrozenClock
) -> None:
    on_rota(db, "outreach-backup", "Sam Patel", "U01SAM", start=clock.now() - timedelta(hours=1))
    fake.add_user(ALEX, "Alex Carter", "alex.carter@nhs.net")
    reply = private_reply(
        bot, fake, "rota cover outreach <@U01SAM|sam.patel> until 20:00", user_id=ALEX
    )
    assert reply.startswith("Sam Patel now holds outreach until 20:00")
    assert "instead of Alex Carter" in reply
    assert "Sam Patel (cover)" in private_reply(bot, fake, "rota")


def test_app_home_shows_the_rota_open_requests_and_mine(bot: SlackBot, fake: FakeSlack) -> None:
    raise_review(services=bot.services, request=request(), by=NURSE)
    response = bot.post(
        event({"type": "app_home_opened", "user": NURSE_ID, "channel": "D0NURSE", "tab": "home"})
    )
    assert response.status_code == 200
    [published] = fake.wait_for("views.publish")
    assert published.body["user_id"] == NURSE_ID
    home = str(published.body["view"])
    assert "Alex Carter" in home and "RR-0001" in home and "Your recent requests" in home
    assert "9990000018" not in home and "07700 900123" not in home


def test_a_home_tab_of_many_roles_shows_each_holder_whole(
    bot: SlackBot, fake: FakeSlack, db: Database, clock: FrozenClock
) -> None:
    # A large trust: 60 roles on the rota, past one section's 3,000 characters.
    start = clock.now() - timedelta(hours=1)
    for n in range(60):
        on_rota(db, f"ward-{n:02}-nurse-in-charge", f"Charge Nurse {n:02}", f"U0CN{n:02}", start)
    bot.post(event({"type": "app_home_opened", "user": NURSE_ID, "tab": "home"}))
    [published] = fake.wait_for("views.publish")
    assert published.answer["ok"], published.answer  # within Slack's limits for a view
    home = shown(published.body["view"]).splitlines()
    whole = set(rota_lines(services=bot.services, at=clock.now()))
    held = [line for line in home if line.startswith("ward-")]
    assert held and all(line in whole for line in held)  # none cut part-way
    assert len(held) == 60 or "_…cut here: `/rapidreview rota` shows every role._" in home


def test_the_manifest_asks_for_what_the_bot_uses() -> None:
    manifest = (ROOT / "manifest.yml").read_text()
    for needed in (
        "command: /rapidreview",
        "home_tab_enabled: true",
        "is_enabled: true",
        "socket_mode_enabled: true",
        "app_home_opened",
        "should_escape: true",
    ):
        assert needed in manifest
    for scope in (
        "chat:write",
        "commands",
        "users:read",
        "users:read.email",
        "files:write",
        "im:write",
        # To find a message whose answer was lost rather than post it twice.
        "im:history",
        "channels:history",
        "groups:history",
    ):
        assert f"      - {scope}\n" in manifest


def test_a_form_slack_would_not_open_is_said_privately_with_the_fallback(
    bot: SlackBot, fake: FakeSlack
) -> None:
    fake.fail("views.open", status=200, error="expired_trigger_id")
    assert bot.post(slash_command(response_url=fake.response_url())).status_code == 200
    [reply] = fake.wait_for("response_url")
    assert "could not be opened" in reply.body["text"]
    assert "Bleep the outreach team directly" in reply.body["text"]


def test_rota_followed_by_anything_but_cover_gets_the_help(bot: SlackBot, fake: FakeSlack) -> None:
    assert "/rapidreview rota cover" in private_reply(bot, fake, "rota tomorrow")
    assert private_reply(bot, fake, "rota cover outreach").startswith("Name the role")


def test_an_unexpected_failure_still_answers_with_the_fallback_contact(
    bot: SlackBot, fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_: object) -> list[str]:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(rotas.view, "rota_lines", broken)
    reply = private_reply(bot, fake, "rota")
    assert reply.startswith("That could not be done just now.")
    assert "Bleep the outreach team directly" in reply


def test_an_answer_slack_cannot_take_is_one_line_in_the_log_not_a_traceback(
    bot: SlackBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack unreachable: every command's answer logged bolt's whole traceback."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}/commands/1"
    with caplog.at_level(logging.WARNING):
        assert bot.post(slash_command("rota", response_url=nowhere)).status_code == 200
        deadline = time.monotonic() + 10
        while "could not answer" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    said = [r.getMessage() for r in caplog.records if r.name.startswith("handlers")]
    assert said == ["could not answer a /rapidreview command: URLError"]
    assert not [r for r in caplog.records if r.exc_info]  # bolt's "Failed to run listener"


def test_a_command_home_tab_or_press_meeting_a_hung_database_is_answered_within_seconds(
    postgres_url: str, clock: FrozenClock, fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that takes connections and never answers: `/rapidreview open` waited for ever on
    one of bolt's few listener threads, and ten such left none for a nurse's request form."""
    monkeypatch.setattr(commands, "ANSWER_WAIT", 1.0)  # 15 s in service
    monkeypatch.setattr(home, "ANSWER_WAIT", 1.0)
    monkeypatch.setattr(actions, "FORM_WAIT", 1.0)  # 2.5 s in service
    with TcpProxy("127.0.0.1", 5432) as proxy:
        db = Database(postgres_url.replace(":5432/", f":{proxy.port}/"))
        try:
            with slack_bot(make_services(db, clock), fake) as bot:
                assert private_reply(bot, fake, "open") == "No open requests."
                with db.reading() as a, db.reading() as b, db.reading() as c:
                    a.reviews.count_open() + b.reviews.count_open() + c.reviews.count_open()
                proxy.freeze()  # what takes one of those idle connections now waits for ever
                started = time.monotonic()
                reply = private_reply(bot, fake, "open")
                assert time.monotonic() - started < 5
                assert reply.startswith("The bot cannot reach its database just now.")
                assert "Bleep the outreach team directly" in reply
                # Everyone opening the Home tab meanwhile took a listener thread each too.
                opened = {"type": "app_home_opened", "user": NURSE_ID, "tab": "home"}
                assert bot.post(event(opened)).status_code == 200
                [published] = fake.wait_for("views.publish", timeout=5)
                assert "The bot cannot reach its database just now." in str(published.body)
                # And whoever pressed Record outcome, on a bolt thread of its own until now.
                press = button_click("review_record_outcome", "1", user_id=NURSE_ID)
                assert bot.post(press).status_code == 200
                [told] = fake.wait_for("chat.postEphemeral", timeout=6)
                assert told.body["text"].startswith("The bot cannot reach its database just now.")
                proxy.thaw()
                assert private_reply(bot, fake, "open") == "No open requests."
        finally:
            proxy.thaw()
            db.dispose()
