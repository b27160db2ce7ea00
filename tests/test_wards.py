"""The wards file: read and checked once at start; the staff request forms offer its wards."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.routing import Route

from handlers.slack.forms import REQUEST_FORM
from handlers.web import web_routes
from reviews.wards import RESERVED_CODES, WardsError, load_wards
from settings import Settings, SettingsError, load_settings
from storage.database import Database
from tests.support.builders import FILLED_FORM, make_services
from tests.support.clock import FrozenClock
from tests.support.fake_microsoft import FakeMicrosoft
from tests.support.fake_slack import FakeSlack
from tests.support.process import ROOT, run_bot
from tests.support.slack_requests import (
    choice,
    request_form,
    slack_bot,
    slash_command,
    text_value,
    view_submission,
)
from tests.support.teams_activities import (
    TEAMS_ROUTE,
    activity,
    execute,
    on_teams_rota,
    person,
    teams_bot,
)

EXAMPLE = ROOT / "wards.example.toml"
NURSE = person("Wendy Ward", "0a0a0a0a-0000-4000-8000-000000000001")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wards.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_example_is_a_good_wards_file() -> None:
    wards = load_wards(EXAMPLE)
    assert [w.code for w in wards] == ["ward-7", "ward-12", "cedar"]
    ward_7 = wards.by_code("WARD-7")
    assert ward_7 is not None and ward_7.name == "Ward 7 (Acute Medicine)" and ward_7.beds == 28


GOOD = '[[wards]]\ncode = "ward-7"\nname = "Ward 7"\n'


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[[wards]]\ncode = "ward 7"\nname = "Ward 7"\n', "ward 1: code must be letters"),
        ('[[wards]]\ncode = "ward-7"\n', "ward 'ward-7': name must be given"),
        (GOOD + "beds = -1\n", "ward 'ward-7': beds must be a whole number"),
        (  # else every request from it would be refused as holding a phone number
            '[[wards]]\ncode = "ward-7"\nname = "Ward 7 01234 567890"\n',
            "ward 'ward-7': name must not hold seven digits or more",
        ),
        (GOOD + 'phone = "call us"\n', "ward 'ward-7': phone must be a phone number"),
        (GOOD + 'bleep = "1234"\n', "ward 'ward-7': unknown setting 'bleep'"),
        (GOOD + GOOD, "ward 'ward-7': 'ward-7' is used by ward 'ward-7' too"),
        (
            '[[wards]]\ncode = "Status"\nname = "Status Ward"\n',
            "ward 'Status': the code 'Status' is taken by the public pages' own address "
            '/concern/status/...; choose another code, e.g. code = "Status-ward"',
        ),
        ("wards = 3\n", "needs at least one [[wards]] table"),
        ("[[wards]\n", "TOML syntax"),
    ],
)
def test_a_bad_wards_file_is_one_line_naming_file_ward_and_problem(
    tmp_path: Path, text: str, says: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(WardsError) as caught:
        load_wards(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and says in message
    assert "\n" not in message


def test_every_fixed_address_where_a_ward_code_goes_is_refused_as_a_code(
    db: Database, clock: FrozenClock
) -> None:
    routes = web_routes(make_services(db, clock), Settings(database_url=db.url))
    paths = [route.path for route in routes if isinstance(route, Route)]
    where_a_code_goes = [path.split("/")[2] for path in paths if path.startswith("/concern/")]
    assert {part for part in where_a_code_goes if not part.startswith("{")} == RESERVED_CODES


def test_wards_file_setting(tmp_path: Path) -> None:
    assert load_settings({}, env_file=None).wards_file is None  # none beside bot.py in the repo
    assert load_settings({"WARDS_FILE": str(EXAMPLE)}, env_file=None).wards_file == EXAMPLE
    with pytest.raises(SettingsError, match="WARDS_FILE: no file at"):
        load_settings({"WARDS_FILE": str(tmp_path / "missing.toml")}, env_file=None)


def test_a_wards_file_turns_the_listener_on_even_in_socket_mode() -> None:
    socket = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "OUTREACH_CHANNEL": "C1"}
    assert not load_settings(socket, env_file=None).serves_http
    with_wards = load_settings({**socket, "WARDS_FILE": str(EXAMPLE)}, env_file=None)
    assert with_wards.slack_socket_mode and with_wards.serves_http


def test_the_bot_refuses_to_start_with_a_bad_wards_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + 'beds = "many"\n')
    result = run_bot(
        "db", "upgrade", DATABASE_URL=f"sqlite:///{tmp_path}/rr.db", WARDS_FILE=str(path)
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"rapidreview: {path}: ward 'ward-7': beds must be a whole number from 0 to 1000"
    )


def test_the_slack_form_offers_the_wards_and_takes_one_not_listed(
    db: Database, clock: FrozenClock, fake: FakeSlack
) -> None:
    services = dataclasses.replace(make_services(db, clock), wards=load_wards(EXAMPLE))
    with slack_bot(services, fake) as bot:
        assert bot.post(slash_command()).status_code == 200
        [opened] = fake.wait_for("views.open")
        blocks = {b.get("block_id"): b for b in opened.body["view"]["blocks"]}
        offered = [o["value"] for o in blocks["ward"]["element"]["options"]]
        assert offered == [
            "Ward 7 (Acute Medicine)",
            "Ward 12 (Elderly Care)",
            "Cedar Ward (Surgery)",
        ]
        assert "ward_other" in blocks

        listed = {**request_form(), "ward": {"value": choice("Ward 12 (Elderly Care)")}}
        bot.post(view_submission(REQUEST_FORM, listed, user_id="U0NURSE", view_id="V1"))
        typed = {
            **request_form(),
            "ward": {"value": choice(None)},
            "ward_other": {"value": text_value("Discharge lounge")},
        }
        bot.post(view_submission(REQUEST_FORM, typed, user_id="U0NURSE", view_id="V2"))
        neither = {**request_form(), "ward": {"value": choice(None)}}
        answer = bot.post(view_submission(REQUEST_FORM, neither, user_id="U0NURSE", view_id="V3"))
        assert answer.json()["errors"] == {"ward": "Enter the ward."}
    with db.unit_of_work() as uow:
        assert [getattr(uow.reviews.get(i), "ward", None) for i in (1, 2)] == [
            "Ward 12 (Elderly Care)",
            "Discharge lounge",
        ]


def test_the_teams_form_offers_the_wards_and_takes_one_not_listed(
    db: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    services = dataclasses.replace(
        make_services(db, clock, routes=(TEAMS_ROUTE,)), wards=load_wards(EXAMPLE)
    )
    on_teams_rota(db, "outreach", "Alex Carter", "a1e0", clock.now() - timedelta(hours=1))
    with FakeMicrosoft(tmp_path) as ms, teams_bot(services, ms) as bot:
        bot.post(activity(ms, NURSE, text="rapidreview"))
        [reply] = ms.posts_to(f"a:personal-{NURSE.teams_id}")
        body = reply.body["attachments"][0]["content"]["body"]
        ward = next(e for e in body if e.get("id") == "ward")
        assert [c["value"] for c in ward["choices"]][:2] == [
            "Ward 7 (Acute Medicine)",
            "Ward 12 (Elderly Care)",
        ]
        typed = {**FILLED_FORM, "ward": "", "ward_other": "Discharge lounge", "rr_form": "f1"}
        answer = bot.post(execute(ms, NURSE, "raise", typed, personal=True))
        assert answer.status_code == 200
    with db.unit_of_work() as uow:
        assert getattr(uow.reviews.get(1), "ward", None) == "Discharge lounge"


TWO_SITES = """
[[wards]]
code = "ri-ward-7"
name = "Ward 7 (Royal Infirmary)"
site = "Royal Infirmary"

[[wards]]
code = "gh-ward-7"
name = "Ward 7 (General Hospital)"
site = "General Hospital"
"""


def test_a_ward_typed_that_two_sites_share_is_never_recorded_as_the_first_sites(
    db: Database, clock: FrozenClock, fake: FakeSlack, tmp_path: Path
) -> None:
    # A trust of two hospitals, each with its Ward 7. A nurse at the General types "Ward 7" in
    # the box for a ward not listed: the request must not go down as the Royal Infirmary's
    # Ward 7, where the outreach team would look for the patient.
    wards = load_wards(write(tmp_path, TWO_SITES))
    services = dataclasses.replace(make_services(db, clock), wards=wards)
    with slack_bot(services, fake) as bot:
        for number, typed in enumerate(["Ward 7", "ward 7 (general hospital)", "gh-ward-7"]):
            form = {
                **request_form(),
                "ward": {"value": choice(None)},
                "ward_other": {"value": text_value(typed)},
            }
            view = f"V{number}"
            assert (
                bot.post(
                    view_submission(REQUEST_FORM, form, user_id="U0NURSE", view_id=view)
                ).status_code
                == 200
            )
    with db.unit_of_work() as uow:
        assert [getattr(uow.reviews.get(i), "ward", None) for i in (1, 2, 3)] == [
            "Ward 7",  # as typed: which hospital's is for the team to ask, never guessed
            "Ward 7 (General Hospital)",
            "Ward 7 (General Hospital)",
        ]
