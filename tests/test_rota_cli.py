"""`python bot.py rota import|show|cover`, run as a rota coordinator would run them."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from storage.database import Database
from storage.tables import Outbox
from tests.support.process import run_bot
from tests.test_rota_import import ROTA

pytestmark = pytest.mark.slow
LONDON = ZoneInfo("Europe/London")


def bot(*args: str, tmp_path) -> subprocess.CompletedProcess[str]:
    database = f"sqlite:///{tmp_path}/rr.db"
    return run_bot("rota", *args, cwd=tmp_path, DATABASE_URL=database, ROTA_ADMINS="lead@nhs.net")


def test_import_show_and_cover_from_the_command_line(tmp_path):
    imported = bot("import", str(ROTA / "december-2026.csv"), tmp_path=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines()[0] == (
        "Imported december-2026.csv: 248 added, 0 changed, 0 removed, 0 unchanged."
    )
    again = bot("import", str(ROTA / "december-2026.csv"), tmp_path=tmp_path)
    assert "Nothing changed: the rota already says this." in again.stdout
    shown = bot("show", "--at", "2026-12-01T09:00", tmp_path=tmp_path)
    assert shown.returncode == 0
    assert shown.stdout.splitlines() == [
        "icu-registrar: Dr Fatima Malik until 20:00 Tue 01 Dec; then Dr James Wright",
        "outreach: Alex Carter until 20:00 Tue 01 Dec; then Priya Shah",
        "outreach-backup: Sam Patel until 20:00 Tue 01 Dec; then Hannah Lewis",
        "site-manager: Rachel Hughes until 20:00 Tue 01 Dec; then Mark Davies",
    ]
    covered = bot(
        "cover",
        "outreach",
        "sam.patel@nhs.net",
        "--until",
        "23:59",
        "--by",
        "lead@nhs.net",
        tmp_path=tmp_path,
    )
    assert covered.returncode == 0, covered.stderr
    assert covered.stdout.startswith("Sam Patel now holds outreach until 23:59")
    now = bot("show", tmp_path=tmp_path)
    assert any(
        line.startswith("outreach: Sam Patel (cover) until 23:59")
        for line in now.stdout.splitlines()
    )


def test_bad_input_exits_2_with_one_line(tmp_path):
    rejected = bot("import", str(ROTA / "bad-rows.csv"), tmp_path=tmp_path)
    assert rejected.returncode == 2
    assert rejected.stderr.splitlines()[0] == "Nothing imported from bad-rows.csv: 5 problems."
    refused = bot(
        "cover", "outreach", "sam.patel@nhs.net", "--by", "someone@nhs.net", tmp_path=tmp_path
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        "rapidreview: That person is not in the staff directory yet. A rota admin can add them "
        "by importing a rota that names them (with their email)."
    )


def test_a_person_may_be_named_as_the_rota_names_them(tmp_path):
    """At 3 a.m. the operator types the name the rota shows, not an email they must look up."""
    assert bot("import", str(ROTA / "december-2026.csv"), tmp_path=tmp_path).returncode == 0
    unreadable = bot(
        "cover", "outreach", "Sam Patel", "--until", "25:00", "--by", "lead@nhs.net",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert unreadable.returncode == 2
    assert unreadable.stderr.strip().splitlines()[-1] == (  # the command line's own option
        "rapidreview: I could not read '25:00' as a time; write e.g. --until 20:00 or "
        "--until 2026-12-01T20:00."
    )
    covered = bot(
        "cover", "outreach", "Sam Patel", "--until", "23:59", "--by", "lead@nhs.net",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert covered.returncode == 0, covered.stderr
    assert covered.stdout.startswith("Sam Patel now holds outreach until 23:59")
    unknown = bot("remove", "Walter White", "--by", "lead@nhs.net", tmp_path=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines()[-1] == (
        "rapidreview: Nobody in the staff directory is called 'Walter White': give their email "
        "as the rota has it, or their Slack or Teams user id"
    )


def test_files_named_by_the_coordinator_are_read_where_they_typed_the_command(tmp_path):
    """`cd ~/rotas && /opt/rapidreview/scripts/run rota import december.csv`: the file is in
    ~/rotas, the bot's database in its own folder. Run where the coordinator stood, the import
    went into a new, empty database there, and the live bot showed nobody on call."""
    bot_folder, coordinator = tmp_path / "rapidreview", tmp_path / "rotas"
    bot_folder.mkdir()
    coordinator.mkdir()
    (coordinator / "december.csv").write_bytes((ROTA / "december-2026.csv").read_bytes())
    env = {"DATABASE_URL": "sqlite:///rapidreview.db", "RAPIDREVIEW_CALLED_FROM": str(coordinator)}
    imported = run_bot("rota", "import", "december.csv", cwd=bot_folder, **env)
    assert imported.returncode == 0, imported.stderr
    shown = run_bot("rota", "show", "--at", "2026-12-01T12:00", cwd=bot_folder, **env)
    assert "outreach: Alex Carter" in shown.stdout
    assert sorted(p.name for p in coordinator.iterdir()) == ["december.csv"]  # no database
    exported = run_bot("export", "--month", "2026-12", "--checkins", cwd=bot_folder, **env)
    assert exported.stdout.strip() == f"Wrote {coordinator}/rapidreview-checkins-2026-12.csv"


def test_a_cover_recorded_at_the_command_line_tells_the_holder_it_displaces(tmp_path):
    """The operator's cover at 3 a.m. reaches the nurse it takes the bleep from, as a cover
    typed in the chat does."""
    started = datetime.now(LONDON).replace(second=0, microsecond=0) - timedelta(hours=1)
    shift = f"{started:%Y-%m-%dT%H:%M},{started + timedelta(hours=12):%Y-%m-%dT%H:%M}"
    (tmp_path / "now.csv").write_text(
        "role,name,email,slack_user_id,teams_user_id,start,end\n"
        f"outreach,Alex Carter,alex.carter@nhs.net,,,{shift}\n"
        f"outreach-backup,Sam Patel,sam.patel@nhs.net,,,{shift}\n"
    )
    assert bot("import", str(tmp_path / "now.csv"), tmp_path=tmp_path).returncode == 0
    covered = bot("cover", "outreach", "Sam Patel", "--by", "Mo Manager", tmp_path=tmp_path)
    assert covered.returncode == 0, covered.stderr
    with Database(f"sqlite:///{tmp_path}/rr.db").reading() as uow:
        queued = uow.session.exec(select(Outbox).where(Outbox.kind == "direct")).all()
    assert [row.address for row in queued] == ["alex.carter@nhs.net"]
    text = json.loads(queued[0].payload)["text"]
    assert text.startswith("Sam Patel holds outreach instead of you from ")
    assert text.endswith("(recorded by Mo Manager).")
