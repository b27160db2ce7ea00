"""The local shell, as a new user meets it: `python bot.py` with nothing configured."""

from __future__ import annotations

import pytest

from tests.support.process import BotProcess, bot_environment

pytestmark = pytest.mark.slow


@pytest.fixture
def shell(tmp_path):
    bot = BotProcess(env=bot_environment(DATABASE_URL=f"sqlite:///{tmp_path}/rr.db"), stdin=True)
    yield bot
    bot.stop()


def raise_family_request(shell):
    shell.type("raise")
    for answer in (
        "3",
        "Ward 7",
        "12",
        "999 000 0018",
        "6",
        "1",
        "Dad is more breathless than this morning",
        "07700 900123",
    ):
        shell.type(answer)


def test_says_it_is_the_shell_and_how_to_connect_slack(shell):
    greeting = shell.wait_for("Commands:")
    assert "No Slack or Teams is configured" in greeting
    assert "SLACK_BOT_TOKEN" in greeting


def test_raise_acknowledge_attend_and_record_outcome_at_the_terminal(shell):
    shell.wait_for("Commands:")
    raise_family_request(shell)
    assert "bleep the outreach team directly" in shell.wait_for("RR-0001 raised.").lower()
    # The person paged first (the urgent lane), then the card.
    assert "[direct message] New rapid review RR-0001" in shell.wait_for("New rapid review")
    card = shell.wait_for("buttons:")
    assert "RR-0001 · URGENT · Ward 7 bed 12" in card
    assert "0018" not in card.replace("***0018", "")  # never the full NHS number
    assert "07700" not in card

    shell.type("ack RR-0001")
    shell.wait_for("RR-0001 acknowledged.")
    assert "07700 900123" in shell.wait_for("call back on")  # privately, to the acknowledger
    shell.type("attend 1")
    shell.wait_for("RR-0001 attending.")
    shell.type("outcome RR-0001")
    shell.type("3")
    shell.type("1")
    shell.wait_for("RR-0001 closed.")
    assert "Transfer to a higher level of care (ICU)" in shell.wait_for("Closed by You")
    shell.type("open")
    shell.wait_for("No open requests.")
    shell.type("quit")
    assert shell.process.wait(timeout=10) == 0


def test_form_errors_say_what_to_fix_and_raise_nothing(shell):
    shell.wait_for("Commands:")
    shell.type("raise")
    for answer in ("2", "", "", "1234567890", "25", "1", "Worried", ""):
        shell.type(answer)
    errors = shell.wait_for("Nothing was raised")
    assert "ward: Enter the ward." in errors
    assert "not a valid NHS number" in errors
    assert "NEWS2 is a whole number from 0 to 20" in errors
    assert "call back" in errors
    shell.type("open")
    shell.wait_for("No open requests.")
