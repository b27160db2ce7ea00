"""The local shell, as a new user meets it: `python bot.py` with nothing configured, typed at a
real (pseudo-)terminal, so readline, Ctrl-C and Ctrl-D behave as they do for a person."""

from __future__ import annotations

import socket
import urllib.request
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import requests

from reviews import service
from reviews.messages import Message
from storage.database import Database
from storage.migrate import upgrade
from tests.support.builders import NURSE, make_services, request
from tests.support.clock import FrozenClock
from tests.support.databases import postgres_database, postgres_unavailable
from tests.support.process import BotProcess, bot_environment, run_bot
from tests.support.public_pages import send, status_link
from tests.support.terminal import CTRL_C, CTRL_D, UP, PtyBot

pytestmark = pytest.mark.slow

FAMILY_REQUEST = (
    "3",
    "Ward 7",
    "12",
    "999 000 0018",
    "6",
    "1",
    "Dad is more breathless than this morning",
    "07700 900123",
)


@pytest.fixture
def shell(tmp_path):
    bot = PtyBot(env=bot_environment(DATABASE_URL=f"sqlite:///{tmp_path}/rr.db"))
    bot.expect("> ")
    yield bot
    bot.stop()


def raise_family_request(shell: PtyBot) -> str:
    shell.type("raise")
    for answer in FAMILY_REQUEST:
        shell.type(answer)
    return shell.expect("in an emergency call 2222.")


def test_first_start_is_one_screen_ending_at_a_quiet_prompt(tmp_path):
    # Today's digest and check-in prompts fell due three hours ago: a running bot would send
    # them late; a brand-new trial has nothing to catch up on.
    due = (datetime.now(ZoneInfo("Europe/London")) - timedelta(hours=3)).strftime("%H:%M")
    env = bot_environment(
        DATABASE_URL=f"sqlite:///{tmp_path}/rr.db", DIGEST_TIME=due, CHECKIN_TIME=due
    )
    bot = PtyBot(env=env)
    try:
        first = bot.expect("> ")
        assert "No Slack or Teams is configured" in first and "SLACK_BOT_TOKEN" in first
        assert f"Database: {tmp_path}/rr.db" in first
        assert "12-hour shift until" in first  # the trial's shifts, said once
        assert len(first.strip().splitlines()) <= 20
        later = bot.rest(timeout=4)  # the scheduler's first ticks have run by now
        noises = (
            "Sent late",
            "digest",
            "Daily check-in",
            "Rota gap",
            "Handover",
            "WARNING",
            "Traceback",
        )
        for noise in noises:
            assert noise not in first + later
        assert later.strip() == ""
    finally:
        bot.stop()


def test_raise_acknowledge_attend_and_close_at_the_terminal(shell):
    assert "bleep the outreach team directly" in raise_family_request(shell).lower()
    # The person paged first (the urgent lane), then the card.
    shell.expect("[direct message] New rapid review RR-0001")
    card = shell.expect("buttons:")
    # "Ward 7" typed is the trial's listed Ward 7 (Acute Medicine), under its full name.
    assert "RR-0001 · URGENT · Ward 7 (Acute Medicine) bed 12" in card
    assert "NHS ***0018" in card  # masked, as the Slack and Teams cards show it
    assert "9990000018" not in card.replace(" ", "") and "07700" not in card
    shell.type("open")
    assert "not yet acknowledged · raised" in shell.expect("raised ")

    shell.type("ack RR-0001")
    shell.expect("RR-0001 acknowledged.")
    shell.expect("[direct message] RR-0001: call back on 07700 900123")  # privately
    shell.type("attend 1")
    shell.expect("RR-0001 attending.")
    shell.type("outcome RR-0001")
    shell.type("3")
    shell.type("1")
    shell.expect("RR-0001 closed.")
    shell.expect("Closed by Shell user")
    shell.expect("Transfer to a higher level of care (ICU)")
    shell.type("open")
    shell.expect("No open requests.")
    shell.type("quit")
    assert shell.wait() == 0


def test_each_answer_is_checked_as_typed_and_asked_again_in_the_same_words(shell):
    def answer(typed: str, refusal: str, question: str) -> None:
        shell.type(typed)
        shell.expect(refusal)
        shell.expect(question)  # the same question again, in the same words

    shell.type("raise")
    shell.expect("Who is raising it?")
    answer("7", "Choose who is raising this request. Type a number from 1 to 3.", "Who is")
    shell.type("2")
    shell.expect("or another):")  # the wards it offers
    answer("", "Enter the ward.", "or another):")
    shell.type("Ward 4")
    shell.type("")
    shell.expect("NHS number (optional):")
    answer("9990000019", "check digit is wrong", "NHS number (optional):")
    shell.type("")
    shell.expect("NEWS2 score 0-20 (optional):")
    answer("25", "NEWS2 is a whole number from 0 to 20", "NEWS2 score 0-20 (optional):")
    shell.type("")
    shell.type("2")
    shell.type("Feels worse")
    shell.expect("Call-back number:")
    answer("not a number", "Enter a phone number", "Call-back number:")
    shell.type("07700 900456")
    shell.expect("RR-0001 raised.")
    shell.type("open")
    shell.expect("Ward 4")  # nothing typed before a mistake was lost


def test_interrupts_cancel_a_form_and_end_the_shell_without_a_traceback(shell):
    shell.type("raise")
    shell.type("1")
    shell.expect("or another):")
    shell.press(CTRL_C)
    shell.expect("Cancelled: nothing was raised.")
    shell.type("raise")
    shell.expect("Who is raising it?")
    shell.press(CTRL_D)
    shell.expect("Cancelled: nothing was raised.")
    shell.type("open")
    shell.expect("No open requests.")
    shell.expect("> ")
    shell.press(CTRL_C)  # at the prompt: the end
    assert shell.wait() == 0
    assert "Traceback" not in shell.screen


def test_the_up_arrow_recalls_commands_but_never_a_forms_answers(shell):
    raise_family_request(shell)
    shell.expect("> ")
    shell.type("open")
    shell.expect("Open requests (1)")
    shell.expect("> ")
    shell.press(UP + b"\r")
    shell.expect("Open requests (1)")  # the same command again
    shell.expect("> ")
    shell.press(UP + UP + b"\r")  # before open: raise, not the call-back number typed in it
    shell.expect("Who is raising it?")
    shell.press(CTRL_C)
    shell.expect("Cancelled")
    assert "Traceback" not in shell.screen


def test_outcome_and_cancel_on_a_closed_request_refuse_before_asking(shell):
    raise_family_request(shell)
    shell.type("outcome 1")
    shell.type("1")
    shell.type("")  # no note
    shell.expect("RR-0001 closed.")
    shell.type("outcome 1")
    refused = shell.expect("is already closed.")
    shell.type("cancel 1")
    refused += shell.expect("is already closed.")
    shell.type("open")
    refused += shell.expect("No open requests.")
    assert "Outcome?" not in refused and "Why cancel?" not in refused


def test_unknown_commands_and_cover_as_the_gap_warning_says_it(shell):
    shell.type("frobnicate")
    shell.expect("Unknown command 'frobnicate'. Type help to see the commands.")
    shell.type("rota cover outreach @person until 09:00")
    shell.expect("Shell user now holds outreach until 09:00")
    shell.type("cover site-manager until 09:30")
    shell.expect("Shell user now holds site-manager until 09:30")
    shell.type("cover nosuchrole until 09:30")
    shell.expect("There is no role called 'nosuchrole'")


def test_works_when_typed_into_a_pipe_too(tmp_path):
    bot = BotProcess(env=bot_environment(DATABASE_URL=f"sqlite:///{tmp_path}/rr.db"), stdin=True)
    try:
        bot.wait_for("Commands:")
        bot.type("raise")
        for answer in FAMILY_REQUEST:
            bot.type(answer)
        bot.wait_for("RR-0001 raised.")
    finally:
        bot.stop()


def test_a_configured_trusts_bot_is_left_alone(tmp_path):
    """With Slack configured, the shell neither writes to the trust's database nor sends to
    Slack, and never prints the database password."""
    trust_db = tmp_path / "trust.db"
    env = bot_environment(
        DATABASE_URL=f"sqlite:///{trust_db}",
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET="test-secret",
        OUTREACH_CHANNEL="C0123",
        SLACK_API_URL="http://127.0.0.1:9/",  # nothing listens: a send would fail loudly
    )
    bot = PtyBot("shell", env=env, cwd=tmp_path)
    try:
        first = bot.expect("> ")
        assert "leaves that bot's database alone" in first
        assert f"{tmp_path}/rapidreview-shell.db" in first
        raise_family_request(bot)
        bot.expect("[#outreach] Rapid review RR-0001")  # printed here, not sent to Slack
    finally:
        bot.stop()
    assert not trust_db.exists()
    assert (tmp_path / "rapidreview-shell.db").exists()


def test_a_live_bots_database_without_its_settings_is_refused_not_taken_over(tmp_path):
    """The bot's .env went missing on the server: `python bot.py` found nothing configured and
    started the shell on the trust's own database, whose sweep fired its open requests' next
    levels into the terminal, where nobody was; their Slack messages were never queued."""
    url = f"sqlite:///{tmp_path}/trust.db"
    db = Database(url)
    upgrade(db.engine)
    clock = FrozenClock(datetime.now(UTC) - timedelta(minutes=30))
    review = service.raise_review(services=make_services(db, clock), request=request(), by=NURSE)
    with db.reading() as uow:
        before = sorted(row.key for row in uow.outbox.for_review(review.review.id))
    for command in ((), ("shell",)):
        refused = run_bot(*command, cwd=tmp_path, DATABASE_URL=url)
        assert refused.returncode == 2
        assert refused.stderr.strip() == (
            "rapidreview: DATABASE_URL is a live bot's database (it holds messages for slack), "
            "but no Slack or Teams settings are set here. The shell would take over its open "
            "requests' escalation, into this terminal. Set the bot's settings (its .env), or "
            "point DATABASE_URL at a database of the shell's own."
        )
    with db.reading() as uow:
        assert sorted(row.key for row in uow.outbox.for_review(review.review.id)) == before
        assert uow.reviews.get(review.review.id).escalation_level == review.review.escalation_level
    db.dispose()


def test_the_shells_own_database_after_it_texted_is_still_the_shells(tmp_path):
    """The trial texts (the shipped policy's fallback) go out as platform "notify": a trial
    database that had sent one was refused as a live bot's."""
    url = f"sqlite:///{tmp_path}/trial.db"
    db = Database(url)
    upgrade(db.engine)
    with db.unit_of_work() as uow:
        for platform in ("shell", "notify", "pager"):
            uow.outbox.enqueue(
                key=f"trial:{platform}",
                platform=platform,
                kind="direct",
                address="someone",
                payload=Message(text="hello").to_json(),
                at=datetime.now(UTC),
            )
    db.dispose()
    shell = PtyBot(env=bot_environment(DATABASE_URL=url))
    try:
        shell.expect("> ")
    finally:
        shell.stop()


@pytest.mark.postgres
def test_the_database_password_is_never_shown():
    if postgres_unavailable():
        pytest.skip(postgres_unavailable())
    with postgres_database() as url:
        with_password = url.replace("postgres@", "postgres:Sekrit-pw@")  # trust auth ignores it
        bot = PtyBot(env=bot_environment(DATABASE_URL=with_password))
        try:
            first = bot.expect("> ")
            assert "postgres:***@127.0.0.1" in first
            assert "Sekrit-pw" not in first
        finally:
            bot.stop()


def test_with_port_set_the_shell_serves_the_family_pages(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = bot_environment(DATABASE_URL=f"sqlite:///{tmp_path}/rr.db", PORT=str(port))
    bot = PtyBot(env=env)
    try:
        first = bot.expect("> ")
        assert f"A family's request form: http://localhost:{port}/concern" in first
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/concern", timeout=10) as page:
            assert page.status == 200 and "Ward 7 (Acute Medicine)" in page.read().decode()
        bot.press(CTRL_C)  # reaches the prompt, not the web server's thread
        assert bot.wait() == 0
    finally:
        bot.stop()


def test_a_short_retention_is_said_in_the_shell_too(tmp_path):
    """The shell runs the daily retention job as the bot does: a RETENTION_DAYS typo is said
    on its screen, before the 10 minutes it waits are up."""
    env = bot_environment(DATABASE_URL=f"sqlite:///{tmp_path}/rr.db", RETENTION_DAYS="9")
    bot = PtyBot(env=env)
    try:
        said = bot.expect("> ")
        assert "RETENTION_DAYS=9:" in said and "stop the bot and set RETENTION_DAYS=90" in said
    finally:
        bot.stop()


def test_a_relative_asks_on_the_shells_family_page_and_it_arrives_in_the_shell(tmp_path):
    """README: with PORT set, "send a request as a relative would, and watch it arrive in the
    shell"; taking it gives the names and call-back number, and the relative's status link
    shows it seen."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = bot_environment(DATABASE_URL=f"sqlite:///{tmp_path}/rr.db", PORT=str(port))
    bot = PtyBot(env=env)
    try:
        bot.expect("> ")
        site = SimpleNamespace(url=f"http://127.0.0.1:{port}")
        answer = send(site, "ward-7")
        assert answer.status_code == 200 and "RR-0001" in answer.text
        arrived = bot.expect("Mum is not making sense")
        assert "RR-0001" in arrived and "07700" not in arrived and "Bloggs" not in arrived
        bot.type("ack 1")
        taken = bot.expect("call back on")
        assert "Jo Bloggs" in taken + bot.rest()
        status = requests.get(status_link(answer), timeout=10)
        assert status.status_code == 200 and "The outreach team has seen it" in status.text
        bot.press(CTRL_C)
        assert bot.wait() == 0
    finally:
        bot.stop()
