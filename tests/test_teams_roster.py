"""`python bot.py rota import` for a Teams-only trust: Teams ids found by email in the roster.

The bot as bot.py builds it, on SQLite and PostgreSQL; the Bot Connector (FakeMicrosoft) serves
the outreach team's roster in pages (`GET v3/conversations/{id}/pagedmembers`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import bot as rapidreview
import cli
from reviews import service
from reviews.context import Actor
from reviews.outbox import drain
from tests.support.builders import request
from tests.support.clock import FrozenClock
from tests.support.fake_microsoft import TENANT, FakeMicrosoft
from tests.support.teams_activities import OUTREACH, teams_settings

GRACE_AAD = "9ace9ace-0000-4000-8000-000000000005"
NURSE = Actor(platform="teams", user_id="0a0a0a0a-0000-4000-8000-000000000001", name="Wendy")
HEADER = "role,name,email,slack_user_id,teams_user_id,start,end\n"
GRACE_ROW = "outreach,Grace Okafor,grace.okafor@nhs.net,,,2026-12-01T08:00,2026-12-01T20:00\n"


@pytest.fixture
def ms(tmp_path: Path) -> Iterator[FakeMicrosoft]:
    with FakeMicrosoft(tmp_path) as fake:
        fake.roster_page_size = 2  # five people: three pages, two continuation tokens
        for number in range(1, 5):
            aad = f"0000000{number}-0000-4000-8000-00000000000{number}"
            fake.add_member(f"Nurse {number}", aad, f"nurse{number}@nhs.net")
        fake.add_member("Grace Okafor", GRACE_AAD, "Grace.Okafor@nhs.net", "gokafor@nhs.net")
        yield fake


@pytest.fixture
def bot(database_url: str, clock: FrozenClock, ms: FakeMicrosoft) -> Iterator[rapidreview.Bot]:
    settings = replace(teams_settings(ms), database_url=database_url)
    built = rapidreview.build(settings, clock=clock, teams_options={"http_client": ms.session()})
    yield built
    built.services.db.dispose()


def rota_import(bot: rapidreview.Bot, path: Path, capsys: pytest.CaptureFixture[str]) -> tuple:
    """The exit status, and the report: on stdout when imported, problems on stderr when not."""
    status = cli.command(cli.parse_args(["rota", "import", str(path)]), bot)
    printed = capsys.readouterr()
    return status, printed.out if status == 0 else printed.err


def roster_pages(ms: FakeMicrosoft) -> list[str]:
    return [c.path for c in ms.connector_calls("GET") if c.path.endswith("/pagedmembers")]


def test_an_email_only_rota_person_is_reached_by_an_escalation_dm(
    bot: rapidreview.Bot, ms: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rota = tmp_path / "rota.csv"
    rota.write_text(HEADER + GRACE_ROW)
    status, printed = rota_import(bot, rota, capsys)
    assert status == 0, printed
    assert "added to the staff directory: Grace Okafor (Teams id found by email)" in printed
    # The whole roster was read, following the continuation tokens, from the outreach team.
    assert roster_pages(ms) == [f"/v3/conversations/{OUTREACH}/pagedmembers"] * 3
    with bot.services.db.unit_of_work() as uow:
        grace = uow.rota.staff_by_email("grace.okafor@nhs.net")
    assert grace is not None and grace.teams_user_id == GRACE_AAD

    service.raise_review(services=bot.services, request=request(), by=NURSE)
    drain(bot.services, bot.senders)
    [opened] = [c for c in ms.connector_calls("POST") if c.path == "/v3/conversations"]
    assert opened.body["members"] == [{"id": GRACE_AAD}] and opened.body["tenantId"] == TENANT
    [ping] = ms.posts_to(f"a:personal-{GRACE_AAD}")
    assert "RR-0001" in ping.said

    # Known now: importing again changes nothing and does not read the roster again.
    status, printed = rota_import(bot, rota, capsys)
    assert status == 0 and "Nothing changed" in printed
    assert len(roster_pages(ms)) == 3


def test_a_person_neither_slack_nor_teams_knows_is_reported_by_name(
    bot: rapidreview.Bot, ms: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rota = tmp_path / "rota.csv"
    stranger = "outreach,Jo Bloggs,jo.bloggs@nhs.net,,,2026-12-01T20:00,2026-12-02T08:00\n"
    rota.write_text(HEADER + GRACE_ROW + stranger)
    status, printed = rota_import(bot, rota, capsys)
    assert status == 2
    assert printed.splitlines() == [
        "Nothing imported from rota.csv: 1 problem.",
        "line 3: unknown person: Jo Bloggs (jo.bloggs@nhs.net) is not in the outreach team in "
        "Teams; check the email, add them to the team, or give their teams_user_id",
    ]
    with bot.services.db.unit_of_work() as uow:
        assert uow.rota.staff_by_email("grace.okafor@nhs.net") is None


def test_a_user_principal_name_on_the_rota_finds_them_too(
    bot: rapidreview.Bot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rota = tmp_path / "rota.csv"
    rota.write_text(HEADER + GRACE_ROW.replace("grace.okafor@", "gokafor@"))
    status, printed = rota_import(bot, rota, capsys)
    assert status == 0, printed
    with bot.services.db.unit_of_work() as uow:
        grace = uow.rota.staff_by_email("gokafor@nhs.net")
    assert grace is not None and grace.teams_user_id == GRACE_AAD


def test_teams_unreachable_imports_nothing(
    bot: rapidreview.Bot, ms: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ms.fail_next(503)
    rota = tmp_path / "rota.csv"
    rota.write_text(HEADER + GRACE_ROW)
    status, printed = rota_import(bot, rota, capsys)
    assert status == 2
    assert printed.splitlines() == [
        "Nothing imported from rota.csv: 1 problem.",
        "could not ask Teams for user ids (Bot Connector 503)",
    ]
    with bot.services.db.unit_of_work() as uow:
        assert uow.rota.staff_by_email("grace.okafor@nhs.net") is None


def test_with_slack_and_teams_a_person_either_knows_is_enough(
    bot: rapidreview.Bot, tmp_path: Path
) -> None:
    from rotas.importer import import_rota

    rota = tmp_path / "rota.csv"
    slack_only = "outreach,Sam Patel,sam.patel@nhs.net,,,2026-12-01T20:00,2026-12-02T08:00\n"
    stranger = "outreach,Jo Bloggs,jo.bloggs@nhs.net,,,2026-12-02T08:00,2026-12-02T20:00\n"
    rota.write_text(HEADER + GRACE_ROW + slack_only + stranger)
    report = import_rota(
        services=bot.services,
        path=rota,
        lookup_slack_id={"sam.patel@nhs.net": "U01SAM"}.get,
        lookup_teams_id=bot.teams.lookup_teams_id(),
    )
    assert [(r.line, r.reason) for r in report.rejected] == [
        (
            4,
            "unknown person: neither Slack nor Teams knows Jo Bloggs by jo.bloggs@nhs.net; "
            "check the email or give their slack_user_id or teams_user_id",
        )
    ]
    rota.write_text(HEADER + GRACE_ROW + slack_only)
    report = import_rota(
        services=bot.services,
        path=rota,
        lookup_slack_id={"sam.patel@nhs.net": "U01SAM"}.get,
        lookup_teams_id=bot.teams.lookup_teams_id(),
    )
    assert report.ok, report.lines()
    assert "added to the staff directory: Sam Patel (Slack id found by email)" in report.lines()
    assert "added to the staff directory: Grace Okafor (Teams id found by email)" in report.lines()
