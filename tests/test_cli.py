"""The command line as its operators meet it: help written for them, bad input as one line
saying what is wrong with exit status 2, answers on stdout and problems on stderr."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from cli import make_parser
from tests.support.process import ROOT, run_bot

APP_ID = "00000000-1111-4222-8333-444444444444"


def every_parser(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += every_parser(sub)
    return found


def test_every_command_and_option_is_described_for_its_user():
    for parser in every_parser(make_parser()):
        assert parser.description, parser.prog
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                assert action.help, f"{parser.prog} {action.dest}"
        shown = parser.format_help()
        for internal in ("CONTRACT", "BadInput", "Bot", "bot.main"):
            assert internal not in shown, f"{parser.prog}: {internal}"


def test_help_is_printed_and_exits_0():
    result = run_bot("export", "--help")
    assert result.returncode == 0 and result.stderr == ""
    assert "--with-identifiers  add NHS and call-back numbers" in result.stdout


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_python_without_the_projects_packages_says_to_use_scripts_run(tmp_path, log_format):
    # The README writes every command as `python bot.py ...`; a newcomer's own python, without
    # .venv's packages (-S leaves out site-packages, as a system python would lack them), must
    # be told what to run instead, not shown a traceback about sqlalchemy.
    result = subprocess.run(
        [sys.executable, "-S", str(ROOT / "bot.py"), "rota", "show"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "LOG_FORMAT": log_format},
        timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    said = json.loads(lines[0])["message"] if log_format == "json" else lines[0]
    assert "Traceback" not in said
    assert "./scripts/run rota show" in said and ".venv/bin/python bot.py" in said


def test_teams_package_needs_the_app_id_only_and_no_database(tmp_path):
    out = tmp_path / "teams.zip"
    result = run_bot(
        "teams",
        "package",
        "--out",
        str(out),
        TEAMS_APP_ID=APP_ID,
        DATABASE_URL=f"sqlite:///{tmp_path}/rr.db",
    )
    assert result.returncode == 0, result.stderr
    assert out.is_file() and not (tmp_path / "rr.db").exists()


def test_the_bot_says_every_missing_teams_setting_at_once(tmp_path):
    result = run_bot("rota", "show", TEAMS_APP_ID=APP_ID, DATABASE_URL=f"sqlite:///{tmp_path}/r.db")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    for missing in ("TEAMS_APP_PASSWORD", "TEAMS_TENANT_ID", "TEAMS_OUTREACH_CONVERSATION"):
        assert missing in line


def test_an_unreachable_database_is_named_with_its_reason_but_not_its_password():
    result = run_bot("rota", "show", DATABASE_URL="postgresql://rr:Sekrit-pw@127.0.0.1:1/trust")
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert "cannot reach the database at 127.0.0.1:1/trust" in line
    assert "Connection refused" in line
    assert "Sekrit-pw" not in line


@pytest.mark.parametrize(
    ("url", "rest"),
    [
        # The rest of the password read as the host's start...
        ("postgresql://rr:Sek@rit-pw@127.0.0.1:1/trust", "rit-pw"),
        # ... or, after a '/', as a host and the database's name (found by a review).
        ("postgresql://rr:Sek@ri/t-pw@127.0.0.1:1/trust", "t-pw"),
    ],
)
def test_a_password_with_an_unwritten_at_sign_is_not_shown_in_part(url, rest):
    result = run_bot("rota", "show", DATABASE_URL=url)
    [line] = result.stderr.strip().splitlines()
    assert result.returncode == 2 and rest not in line
    assert line.endswith("(write an '@' in the password as %40)")


def test_a_rejected_rota_is_reported_on_stderr(tmp_path):
    rota = tmp_path / "rota.csv"
    rota.write_text("role,name,email,start,end\noutreach,Alex,alex@example.nhs.uk,tomorrow,\n")
    result = run_bot("rota", "import", str(rota), DATABASE_URL=f"sqlite:///{tmp_path}/rr.db")
    assert result.returncode == 2
    assert result.stdout == "" and "line 1: wrong header" in result.stderr


def test_export_answers_on_stdout_and_logs_nothing(tmp_path):
    out = tmp_path / "december.csv"
    result = run_bot(
        "export",
        "--month",
        "2026-12",
        "--out",
        str(out),
        DATABASE_URL=f"sqlite:///{tmp_path}/rr.db",
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"Wrote {out}" and result.stderr == ""


@pytest.mark.parametrize(
    ("where", "extra", "says"),
    [
        ("no-such-folder/december.csv", [], "cannot write to "),
        ("no-such-folder/december.csv", ["--checkins"], "cannot write to "),
        ("no-such-folder/december.csv", ["--with-identifiers"], "cannot write to "),
        (".", [], "is a folder"),
        (".", ["--with-identifiers"], "is a folder"),
        (".", ["--checkins"], "is a folder"),
    ],
)
def test_an_export_that_cannot_be_written_is_one_line_and_exit_2(tmp_path, where, extra, says):
    out = tmp_path / where
    result = run_bot(
        "export", "--month", "2026-12", "--out", str(out), *extra,
        DATABASE_URL=f"sqlite:///{tmp_path}/rr.db",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("rapidreview: --out: ") and says in line and str(out.parent) in line
    assert tmp_path.is_dir()  # never removed in the clearing up


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["bogus"], "invalid choice: 'bogus'"),
        (["rota"], "required: import|show|cover"),
        (["export"], "required: --month"),
        (["rota", "show", "--at", "2026-12-01"], "--at: '2026-12-01' has no time of day"),
        (["digest", "--date", "2026-13-01"], "--date: '2026-13-01' is not a date"),
        # A mistyped year wrote an empty file and said "Wrote"; a month to come has no requests.
        (["export", "--month", "2099-12"], "--month: December 2099 has not begun"),
        (["export", "--month", "2099-12", "--checkins"], "--month: December 2099 has not begun"),
        (["rota", "import", "/no/such/rota.csv"], "cannot read rota.csv"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(tmp_path, args, says):
    result = run_bot(*args, DATABASE_URL=f"sqlite:///{tmp_path}/rr.db")
    assert result.returncode == 2
    said = (result.stdout + result.stderr).strip().splitlines()
    assert any(says in line for line in said), said
    # An import's report heads its list of problems; everything else is one line.
    assert len(said) == (2 if args[:2] == ["rota", "import"] else 1), said


@pytest.mark.parametrize(
    ("args", "helped"),
    [(["rota", "bogus"], "python bot.py rota --help"), (["export"], "python bot.py export --help")],
)
def test_a_command_line_mistake_is_refused_in_json_with_log_format_json(tmp_path, args, helped):
    """docs/operations.md: a command that will not run is refused in one JSON line. A mistake
    argparse found was its own text line whatever LOG_FORMAT said, which a log shipper reading
    JSON drops; in text, the line is as it was."""
    import json

    text = run_bot(*args, DATABASE_URL=f"sqlite:///{tmp_path}/rr.db")
    as_json = run_bot(*args, DATABASE_URL=f"sqlite:///{tmp_path}/rr.db", LOG_FORMAT="json")
    assert text.returncode == as_json.returncode == 2
    assert text.stdout == as_json.stdout == ""
    [plain] = text.stderr.splitlines()
    [line] = as_json.stderr.splitlines()
    said = json.loads(line)
    assert (said["level"], said["logger"]) == ("ERROR", "rapidreview")
    assert said["message"].endswith(f"(see {helped})")  # the help of the command mistyped
    assert plain == f"rapidreview: {said['message']}"


def test_db_upgrade_brings_a_new_database_up_to_date(tmp_path):
    result = run_bot("db", "upgrade", DATABASE_URL=f"sqlite:///{tmp_path}/rr.db")
    assert result.returncode == 0
    assert result.stdout.strip() == "Database schema is up to date."
    assert result.stderr == ""


def test_a_person_is_found_by_teams_or_slack_id_or_by_name(db):
    """The staff directory decides: a Teams user id (an Entra object id), a Slack id, or a
    name; a one-word name in capitals is a name, not a Slack id."""
    from bot import build
    from cli import BadInput, person_identity
    from settings import Settings
    from storage.tables import Staff

    bot = build(Settings(database_url=db.url), listening=False)
    teams_id = "8f3c2a1e-0b4d-4e7a-9c11-2d5e6f7a8b9c"
    with bot.services.db.unit_of_work() as uow:
        uow.rota.add_staff(Staff(name="Priya Shah", teams_user_id=teams_id))
        uow.rota.add_staff(Staff(name="Sam Patel", slack_user_id="U01SAM"))
        uow.rota.add_staff(Staff(name="WONG", email="li.wong@nhs.net"))
    assert person_identity(teams_id, bot) == ("teams", teams_id)
    assert person_identity("U01SAM", bot) == ("slack", "U01SAM")
    assert person_identity("WONG", bot) == ("shell", "li.wong@nhs.net")
    assert person_identity("priya shah", bot) == ("teams", teams_id)
    with pytest.raises(BadInput, match="Nobody in the staff directory is called 'U0NOBODY'"):
        person_identity("U0NOBODY", bot)
    bot.services.db.dispose()


def test_a_rejected_rota_is_one_json_line_with_log_format_json(tmp_path):
    """A log shipper reading JSON took the rejected import's report as so many broken lines."""
    import json

    rota = tmp_path / "rota.csv"
    rota.write_text("role,name,email,start,end\noutreach,Alex,alex@example.nhs.uk,tomorrow,\n")
    result = run_bot(
        "rota", "import", str(rota), DATABASE_URL=f"sqlite:///{tmp_path}/rr.db", LOG_FORMAT="json"
    )
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    said = json.loads(line)
    assert said["level"] == "ERROR"
    assert said["message"].splitlines()[0] == "Nothing imported from rota.csv: 1 problem."
    assert "line 1: wrong header" in said["message"]
