"""The whole Slack flow against the real `python bot.py` process, as a trust would run it.

The rota is loaded with `python bot.py rota import`, the bot serves Slack over HTTP on a
loopback port, and Slack's Web API is the fake server. Nothing is called in-process: requests
are signed and POSTed as Slack posts them, and everything the bot says arrives at the fake.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from handlers.slack.forms import OUTCOME_FORM, REQUEST_FORM
from tests.support.fake_slack import FakeSlack
from tests.support.process import BotProcess, run_bot, slack_environment
from tests.support.slack_requests import (
    SlackRequest,
    button_click,
    choice,
    radio,
    request_form,
    slash_command,
    text_value,
    view_submission,
)

pytestmark = pytest.mark.slow
LONDON = ZoneInfo("Europe/London")
NURSE, ALEX = "U0WARDNURSE", "U01ALEX"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user(ALEX, "Alex Carter", "alex.carter@nhs.net")
        yield fake


@pytest.fixture
def env(fake: FakeSlack, database_url: str, tmp_path) -> dict[str, str]:
    return slack_environment(
        fake.url,
        database_url,
        DIGEST_CHANNEL="C0DIGEST",
        # The most talkative setting a trust could choose: identifiers must stay out even so.
        LOG_LEVEL="DEBUG",
    )


def import_rota(env: dict[str, str], tmp_path) -> str:
    """Alex holds the outreach bleep now; the Slack id is found by email, as in real life."""
    now = datetime.now(LONDON).replace(second=0, microsecond=0)
    start, end = now - timedelta(hours=1), now + timedelta(hours=11)
    rota = tmp_path / "rota.csv"
    rota.write_text(
        "role,name,email,slack_user_id,teams_user_id,start,end\n"
        f"outreach,Alex Carter,alex.carter@nhs.net,,,{start:%Y-%m-%dT%H:%M},{end:%Y-%m-%dT%H:%M}\n"
    )
    result = run_bot("rota", "import", str(rota), **env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def bot(env: dict[str, str], tmp_path) -> Iterator[tuple[BotProcess, str]]:
    import_rota(env, tmp_path)
    process = BotProcess(env=env)
    process.wait_for("Uvicorn running", timeout=30)
    yield process, f"http://127.0.0.1:{env['PORT']}"
    assert process.stop() in (0, -15)
    logged = "".join(process.log)
    leaks = [line for line in logged.splitlines() if "9990000018" in line or "07700 900123" in line]
    assert not leaks, leaks


def posted_to(fake: FakeSlack, channel: str, timeout: float = 10) -> list:
    """chat.postMessage calls to `channel` (not thread replies), once there is at least one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        calls = [
            c
            for c in fake.called("chat.postMessage")
            if c.body["channel"] == channel and "thread_ts" not in c.body
        ]
        if calls:
            return calls
        time.sleep(0.05)
    raise AssertionError(f"nothing posted to {channel}: {[c.body for c in fake.calls]}")


def post(base: str, request: SlackRequest) -> requests.Response:
    return requests.post(
        f"{base}/slack/events", data=request.body.encode(), headers=request.headers, timeout=10
    )


def test_a_request_from_slash_command_to_outcome_through_the_running_bot(bot, fake):
    process, base = bot
    assert requests.get(f"{base}/healthz", timeout=5).json()["database"] == "ok"

    started = time.perf_counter()
    answer = post(base, slash_command(trigger_id="trig-1"))
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(f"/rapidreview answered by the running bot in {elapsed_ms:.0f} ms")
    assert answer.status_code == 200 and elapsed_ms < 3000
    assert fake.wait_for("views.open")[0].body["view"]["callback_id"] == REQUEST_FORM

    raised = post(base, view_submission(REQUEST_FORM, request_form(), user_id=NURSE))
    assert "RR-0001 raised" in raised.text
    # The bot's own scheduler delivers: the card to the channel, the ping to the bleep holder.
    [card] = posted_to(fake, "C0OUTREACH")
    [ping] = posted_to(fake, ALEX)
    assert "New rapid review RR-0001" in ping.body["text"]
    assert "9990000018" not in json.dumps(card.body) and "07700" not in json.dumps(card.body)

    assert post(base, button_click("review_acknowledge", "1", user_id=ALEX)).status_code == 200
    fake.wait_for("chat.update", 1, timeout=10)
    assert post(base, button_click("review_attend", "1", user_id=ALEX)).status_code == 200
    fake.wait_for("chat.update", 2, timeout=10)
    assert post(base, button_click("review_record_outcome", "1", user_id=ALEX)).status_code == 200
    outcome_form = fake.wait_for("views.open", 2)[1].body["view"]
    closed = post(
        base,
        view_submission(
            OUTCOME_FORM,
            {
                "outcome": {"value": radio("change_in_care")},
                "destination": {"value": choice(None)},
                "note": {"value": text_value("")},
            },
            user_id=ALEX,
            view_id="V0OUTCOME",
            private_metadata=outcome_form["private_metadata"],
        ),
    )
    assert "RR-0001 closed" in closed.text
    final = fake.wait_for("chat.update", 3, timeout=10)[-1]
    assert final.body["ts"] == card.answer["ts"], "the same card, updated in place"
    assert "Change in care on the ward" in json.dumps(final.body)


def test_a_retried_submission_and_a_forged_one_change_nothing(bot, fake):
    process, base = bot
    submission = view_submission(REQUEST_FORM, request_form(), user_id=NURSE, view_id="V0ONCE")
    assert "RR-0001 raised" in post(base, submission).text
    again = post(base, submission.retried())
    assert again.status_code == 200 and "RR-0002" not in again.text

    forged = view_submission(
        REQUEST_FORM,
        request_form(),
        user_id=NURSE,
        view_id="V0FORGED",
        secret="not-the-signing-secret",
    )
    assert post(base, forged).status_code == 401
    stale = slash_command(timestamp=int(time.time()) - 6 * 60)
    assert post(base, stale).status_code == 401

    posted_to(fake, "C0OUTREACH")
    time.sleep(1.5)  # three more delivery ticks: a second review would have posted a second card
    assert len(posted_to(fake, "C0OUTREACH")) == 1
    assert requests.get(f"{base}/healthz", timeout=5).json()["open_requests"] == 1
