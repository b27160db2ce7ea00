"""Hostile and broken input, generated (hypothesis): whatever arrives, the bot answers clearly,
never with a 500 or an unhandled exception, and stores nothing from what it rejects.

Examples per target (on SQLite and PostgreSQL each, where a database is involved): slash-command
text 60, request form 60, outcome and cancel forms 40, button presses 40, public request form
30, rota CSV 60, rota .ics 40, policy TOML 100, wards TOML 100 (530 in all; the check-in forms
are in tests/test_checkin_fuzz.py). Bounded so the file runs in under a minute; derandomised,
with no example database kept, so each run tries the same examples and a failure reproduces.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_bolt import App, BoltRequest
from slack_sdk import WebClient
from sqlmodel import func, select

from handlers.slack import AfterAck, build_slack_app
from handlers.slack.blocks import ACTION_PREFIX
from handlers.slack.forms import CANCEL_FORM, OUTCOME_FORM, REQUEST_FORM
from reviews import service
from reviews.context import Services
from reviews.policy import PolicyError, load_policy
from reviews.wards import WardsError, load_wards
from rotas.importer import import_rota
from settings import Settings
from storage.database import Database
from storage.tables import Cover, Review, Shift
from tests.support.builders import NURSE, make_services, on_rota, request
from tests.support.clock import FrozenClock
from tests.support.fake_slack import FakeSlack
from tests.support.public_pages import PublicPages, form_token
from tests.support.slack_requests import (
    SIGNING_SECRET,
    SlackRequest,
    button_click,
    radio,
    slash_command,
    text_value,
    view_submission,
)


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# Text as people (and attackers) type it: any character, weighted towards the awkward ones.
AWKWARD = st.sampled_from(
    ["", " ", "²", "６", "\u202e", "\u200b", "\x00", "\r\n", "=", "+", "<!channel>", "<@U1>",
     "9990000018", "07700 900123", "RR-0001", "rota", "cover", "digest", "until", "@", "'"]
)  # fmt: skip
TYPED = st.lists(st.one_of(st.text(max_size=30), AWKWARD), max_size=6).map("".join)


def count(db: Database, table: Any) -> int:
    with db.unit_of_work() as uow:
        return uow.session.exec(select(func.count()).select_from(table)).one()


class Slack:
    """The real bolt App, dispatched to in-process (signed exactly as over HTTP)."""

    def __init__(self, services: Services, fake: FakeSlack):
        config = Settings(
            slack_bot_token="xoxb-test",
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=fake.url,
            outreach_channel="C0OUTREACH",
        )
        self.app: App = build_slack_app(
            services, config, WebClient(token="xoxb-test", base_url=fake.url), AfterAck()
        )
        self.errors: list[BaseException] = []

        @self.app.error
        def record(error: BaseException) -> None:
            self.errors.append(error)

    def send(self, request: SlackRequest) -> tuple[int, str]:
        headers: dict[str, str | Sequence[str]] = {**request.headers}
        response = self.app.dispatch(BoltRequest(body=request.body, headers=headers))
        return response.status, response.body


@pytest.fixture
def slack(db: Database, clock: FrozenClock) -> Iterator[Slack]:
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", clock.now() - timedelta(hours=1))
    with FakeSlack() as fake:
        bot = Slack(make_services(db, clock), fake)
        yield bot
        # Listeners that run after their ack: every one finished, still able to reach Slack.
        bot.app.listener_runner.listener_executor.shutdown(wait=True)
    assert bot.errors == []


@fuzz(60)
@given(text=TYPED)
def test_slash_command_text(slack: Slack, db: Database, text: str) -> None:
    before = count(db, Review)
    status, body = slack.send(slash_command(text, response_url="http://127.0.0.1:9/r"))
    assert status == 200, body
    assert count(db, Review) == before


FIELDS = ("caller", "ward", "bed", "nhs_number", "news2", "concern_kind", "concern")


@fuzz(60)
@given(typed=st.fixed_dictionaries({name: TYPED for name in FIELDS}), phone=TYPED)
def test_request_form(slack: Slack, db: Database, typed: dict[str, str], phone: str) -> None:
    values: dict[str, Any] = {
        name: {"value": radio(value) if name in ("caller", "concern_kind") else text_value(value)}
        for name, value in {**typed, "callback_number": phone}.items()
    }
    before = count(db, Review)
    status, body = slack.send(view_submission(REQUEST_FORM, values, user_id="U0WARDNURSE"))
    answer = json.loads(body)
    assert status == 200
    if answer["response_action"] == "errors":
        assert set(answer["errors"]) <= {*FIELDS, "callback_number"}
        assert count(db, Review) == before
    else:
        assert "raised" in body and count(db, Review) == before + 1


@fuzz(40)
@given(
    form=st.sampled_from([OUTCOME_FORM, CANCEL_FORM]),
    metadata=st.one_of(TYPED, st.builds(lambda n: json.dumps({"review": n}), st.integers())),
    chosen=st.one_of(TYPED, st.sampled_from(["no_change", "transfer"])),
    typed=TYPED,
)
def test_outcome_and_cancel_forms(
    slack: Slack,
    db: Database,
    clock: FrozenClock,
    form: str,
    metadata: str,
    chosen: str,
    typed: str,
) -> None:
    if count(db, Review) == 0:
        service.raise_review(services=make_services(db, clock), request=request(), by=NURSE)
    values = {
        "outcome": {"value": radio(chosen)},
        "destination": {"value": text_value(typed)},
        "note": {"value": text_value(typed)},
        "reason": {"value": text_value(typed)},
    }
    status, body = slack.send(
        view_submission(form, values, user_id="U01ALEX", view_id="V0F", private_metadata=metadata)
    )
    assert status == 200 and json.loads(body)["response_action"] in ("errors", "update")


@fuzz(40)
@given(action=TYPED, value=TYPED, user=st.sampled_from(["U01ALEX", "U0WARDNURSE", ""]))
def test_button_presses(slack: Slack, db: Database, action: str, value: str, user: str) -> None:
    before = count(db, Review)
    status, _ = slack.send(button_click(ACTION_PREFIX + action, value, user_id=user))
    assert status == 200 and count(db, Review) == before


PUBLIC_FIELDS = ("caller", "your_name", "relationship", "patient_name", "bed", "concern",
                 "spoken_to_ward", "callback_number")  # fmt: skip


@fuzz(30)
@given(typed=st.fixed_dictionaries({name: TYPED for name in PUBLIC_FIELDS}), forged=st.booleans())
def test_public_request_form(
    site: PublicPages, db: Database, typed: dict[str, str], forged: bool
) -> None:
    token = "forged" if forged else form_token(site)
    before = count(db, Review)
    answer = requests.post(
        f"{site.url}/concern/ward-7/review", data={**typed, "token": token}, timeout=10
    )
    assert answer.status_code < 500
    if "RR-" not in answer.text:
        assert count(db, Review) == before
    assert "Traceback" not in answer.text


ROTA_HEADER = "role,name,email,slack_user_id,teams_user_id,start,end\n"
CSV_CELL = st.one_of(
    TYPED,
    st.sampled_from(["outreach", "a@nhs.net", "U01X", "2026-12-01T08:00", "2026-12-01T20:00",
                     "25:00", "2026-02-30T08:00"]),
)  # fmt: skip
CSV_ROW = st.lists(CSV_CELL, min_size=0, max_size=8).map(lambda cells: ",".join(cells) + "\n")


def rota_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


def assert_all_or_nothing(db: Database, services: Services, path: Path) -> None:
    before = count(db, Shift), count(db, Cover)
    report = import_rota(services=services, path=path)
    assert report.lines(), "a report always says something"
    if not report.ok:
        assert (count(db, Shift), count(db, Cover)) == before


@fuzz(60)
@given(rows=st.lists(CSV_ROW, max_size=5), header=st.booleans())
def test_rota_csv(
    db: Database, clock: FrozenClock, tmp_path: Path, rows: list[str], header: bool
) -> None:
    text = (ROTA_HEADER if header else "") + "".join(rows)
    assert_all_or_nothing(db, make_services(db, clock), rota_file(tmp_path, "rota.csv", text))


ICS_LINE = st.one_of(
    TYPED,
    st.sampled_from(["BEGIN:VEVENT", "END:VEVENT", "SUMMARY:outreach", "DTSTART:20261201T080000",
                     "DTEND:20261201T200000", "ATTENDEE;CN=Alex:mailto:alex@nhs.net",
                     "DTSTART:2026", "BEGIN:VCALENDAR", "END:VCALENDAR"]),
)  # fmt: skip


@fuzz(40)
@given(lines=st.lists(ICS_LINE, max_size=12))
def test_rota_ics(db: Database, clock: FrozenClock, tmp_path: Path, lines: list[str]) -> None:
    text = "BEGIN:VCALENDAR\r\n" + "\r\n".join(lines) + "\r\nEND:VCALENDAR\r\n"
    assert_all_or_nothing(db, make_services(db, clock), rota_file(tmp_path, "rota.ics", text))


TOML_LINE = st.one_of(
    TYPED,
    st.sampled_from(["[[levels]]", 'after = "0s"', 'after = "5x"', 'notify = ["outreach"]',
                     "notify = []", "channel = true", 'repeat_every = "0s"', "[urgency.x]",
                     "news2_at_least = 99", 'attend_within = "1h"', "[fallback]", "sms = 1",
                     'unscored_patient_or_family = "nope"']),
)  # fmt: skip


@fuzz(100)
@given(lines=st.lists(TOML_LINE, max_size=12))
def test_policy_toml(tmp_path: Path, lines: list[str]) -> None:
    path = rota_file(tmp_path, "policy.toml", "\n".join(lines))
    try:
        load_policy(path)
    except PolicyError as error:
        assert str(error).strip() and "\n" not in str(error).strip()


WARDS_LINE = st.one_of(
    TYPED,
    st.sampled_from(["[[wards]]", 'code = "ward-7"', 'code = "Ward 7!"', 'name = "Ward 7"',
                     'site = "RI"', "beds = 28", "beds = -1", 'phone = "x"',
                     'slack_channel = "C0W"']),
)  # fmt: skip


@fuzz(100)
@given(lines=st.lists(WARDS_LINE, max_size=12))
def test_wards_toml(tmp_path: Path, lines: list[str]) -> None:
    path = rota_file(tmp_path, "wards.toml", "\n".join(lines))
    try:
        load_wards(path)
    except WardsError as error:
        assert str(error).strip() and "\n" not in str(error).strip()
