"""No patient identifier in any log line of a full run, on every surface: the real `python bot.py`
serving Slack, Teams and the public pages at LOG_LEVEL=DEBUG; the command line (rota import,
export with identifiers, digest, retention); and the local shell. Identifiers are the test NHS
numbers, the call-back numbers, the patient's and caller's names and what worried them."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from handlers.slack.checkin import CHECKIN_FORM
from handlers.slack.forms import OUTCOME_FORM, REQUEST_FORM
from tests.support.builders import FILLED_FORM
from tests.support.fake_microsoft import FakeMicrosoft
from tests.support.fake_slack import FakeSlack
from tests.support.process import BotProcess, bot_environment, run_bot, slack_environment
from tests.support.public_pages import EXAMPLE_WARDS, FAMILY_FORM, PHONE
from tests.support.slack_requests import (
    SlackRequest,
    button_click,
    choice,
    radio,
    request_form,
    text_value,
    view_submission,
)
from tests.support.teams_activities import ALEX, execute, teams_environment
from tests.support.teams_activities import NURSE as WENDY
from tests.support.terminal import PtyBot
from tests.test_checkin_slack import checkin_form

pytestmark = pytest.mark.slow
LONDON = ZoneInfo("Europe/London")
CONCERN = "Ann Bloggs is much more confused than this morning"
# What each surface is given, and so what no log line may hold (in any spacing).
IDENTIFIERS = [
    "9990000018", "9990000026", "9990000034",
    "07700900123", "07700900456", "07700900789", "07700900321",
    "Ann Bloggs", "Jo Bloggs", "more confused than", "Spoke to the daughter",
]  # fmt: skip


def leaks(text: str) -> list[str]:
    squeezed = re.sub(r"[ \-]", "", text)
    return [i for i in IDENTIFIERS if i in text or i.replace(" ", "") in squeezed]


@pytest.fixture
def fakes(tmp_path: Path) -> Iterator[tuple[FakeSlack, FakeMicrosoft]]:
    with FakeSlack() as slack, FakeMicrosoft(tmp_path) as ms:
        slack.add_user("U01ALEX", "Alex Carter", "alex.carter@nhs.net")
        yield slack, ms


def environment(slack: FakeSlack, ms: FakeMicrosoft, database_url: str) -> dict[str, str]:
    return slack_environment(
        slack.url,
        database_url,
        LOG_LEVEL="DEBUG",
        DIGEST_CHANNEL="C0DIGEST",
        **teams_environment(ms),
        REQUESTS_CA_BUNDLE=str(ms.ca_file),
        WARDS_FILE=str(EXAMPLE_WARDS),
        CONCERN_PHONE=PHONE,
        MANAGERS="mo.manager@nhs.net",
    )


def rota(tmp_path: Path) -> Path:
    now = datetime.now(LONDON).replace(second=0, microsecond=0)
    start, end = now - timedelta(hours=1), now + timedelta(hours=11)
    path = tmp_path / "rota.csv"
    path.write_text(
        "role,name,email,slack_user_id,teams_user_id,start,end\n"
        f"outreach,Alex Carter,alex.carter@nhs.net,U01ALEX,{ALEX.aad_object_id},"
        f"{start:%Y-%m-%dT%H:%M},{end:%Y-%m-%dT%H:%M}\n"
    )
    return path


def slack_post(base: str, request: SlackRequest) -> requests.Response:
    return requests.post(
        f"{base}/slack/events", data=request.body.encode(), headers=request.headers, timeout=10
    )


def through_slack(base: str, slack: FakeSlack) -> None:
    form = request_form(concern=CONCERN)
    raised = slack_post(base, view_submission(REQUEST_FORM, form, user_id="U0NURSE"))
    assert "RR-0001 raised" in raised.text
    assert slack_post(base, button_click("review_acknowledge", "1", user_id="U01ALEX")).ok
    closed = view_submission(
        OUTCOME_FORM,
        {"outcome": {"value": radio("no_change")}, "destination": {"value": choice(None)},
         "note": {"value": text_value("Spoke to the daughter, Jo Bloggs")}},
        user_id="U01ALEX", view_id="V0OUT", private_metadata=json.dumps({"review": 1}),
    )  # fmt: skip
    assert "closed" in slack_post(base, closed).text


def through_teams(base: str, ms: FakeMicrosoft) -> None:
    data = {**FILLED_FORM, "concern": CONCERN, "nhs_number": "9990000026",
            "callback_number": "07700 900456", "rr_form": "f1"}  # fmt: skip
    activity = execute(ms, WENDY, "raise", data)
    token = ms.token(service_url=activity["serviceUrl"])
    answer = requests.post(
        f"{base}/api/messages",
        json=activity,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 200 and "RR-0002" in answer.text


def through_the_public_page(base: str) -> None:
    page = requests.get(f"{base}/concern/ward-7/review", timeout=10)
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token
    fields = {**FAMILY_FORM, "patient_name": "Ann Bloggs", "your_name": "Jo Bloggs",
              "concern": CONCERN, "callback_number": "07700 900789", "token": token[1]}  # fmt: skip
    answer = requests.post(f"{base}/concern/ward-7/review", data=fields, timeout=10)
    assert "RR-0003" in answer.text


def through_checkins(base: str) -> None:
    """A ward nurse's check-in asking for a review in Slack; a daughter's on the public page."""
    values = checkin_form(wants_review=True, respondent="family", worries=CONCERN)
    recorded = slack_post(base, view_submission(CHECKIN_FORM, values, user_id="U0NURSE"))
    assert "RR-0004 raised" in recorded.text
    page = requests.get(f"{base}/concern/ward-7/today", timeout=10)
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token
    fields = {"caller": "family", "answer": "worse", "bed": "12", "worries": CONCERN,
              "wants_review": "yes", "your_name": "Jo Bloggs", "patient_name": "Ann Bloggs",
              "callback_number": "07700 900789", "token": token[1]}  # fmt: skip
    answer = requests.post(f"{base}/concern/ward-7/today", data=fields, timeout=10)
    assert "RR-0005" in answer.text


def test_no_identifier_in_any_log_line_of_a_full_run(
    fakes: tuple[FakeSlack, FakeMicrosoft], database_url: str, tmp_path: Path
) -> None:
    slack, ms = fakes
    env = environment(slack, ms, database_url)
    said: list[str] = []

    def command(*args: str) -> None:
        done = run_bot(*args, cwd=tmp_path, **{k: v for k, v in env.items() if k != "PATH"})
        assert done.returncode == 0, done.stderr
        said.append(done.stdout + done.stderr)

    command("rota", "import", str(rota(tmp_path)))
    bot = BotProcess(env=env)
    try:
        bot.wait_for("Uvicorn running", timeout=30)
        base = f"http://127.0.0.1:{env['PORT']}"
        through_slack(base, slack)
        through_teams(base, ms)
        through_the_public_page(base)
        through_checkins(base)
        slack.wait_for("chat.postMessage", 6, timeout=20)  # cards, pings, call-back numbers
        time.sleep(1)
    finally:
        bot.stop()
    said.append("".join(bot.log))
    month = datetime.now(LONDON).strftime("%Y-%m")
    command("export", "--month", month, "--out", str(tmp_path / "x.csv"), "--with-identifiers")
    command("digest")
    command("retention")
    assert "DEBUG" in said[-4] or "debug" in said[-4].lower(), "the run logged at DEBUG"
    assert leaks("\n".join(said)) == []


def test_no_identifier_in_the_shells_log_lines(tmp_path: Path) -> None:
    env = bot_environment(DATABASE_URL=f"sqlite:///{tmp_path}/rr.db", LOG_FORMAT="json")
    shell = PtyBot(env=env)
    try:
        shell.expect("> ")
        shell.type("raise")
        for answer in ("3", "Ward 7", "12", "999 000 0034", "6", "1", CONCERN, "07700 900321"):
            shell.type(answer)
        screen = shell.expect("in an emergency call 2222.")
        screen += shell.rest(timeout=3)
        shell.type("quit")
    finally:
        shell.stop()
    # The screen shows what was typed (the terminal echoes it); the log lines must not.
    logged = [line for line in screen.splitlines() if line.lstrip().startswith('{"time"')]
    assert leaks("\n".join(logged)) == []
