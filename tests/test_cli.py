"""The command line's bad input: one line saying what is wrong, and exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.process import ROOT, bot_environment


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["bogus"], "invalid choice: 'bogus'"),
        (["rota"], "required: import|show|cover"),
        (["export"], "required: --month"),
        (["rota", "show", "--at", "2026-12-01"], "--at: '2026-12-01' has no time of day"),
        (["digest", "--date", "2026-13-01"], "--date: '2026-13-01' is not a date"),
        (["rota", "import", "/no/such/rota.csv"], "cannot read rota.csv"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(tmp_path, args, says):
    env = bot_environment(DATABASE_URL=f"sqlite:///{tmp_path}/rr.db")
    result = subprocess.run(
        [sys.executable, "bot.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    said = (result.stdout + result.stderr).strip().splitlines()
    assert any(says in line for line in said), said
    # An import's report heads its list of problems; everything else is one line.
    assert len(said) == (2 if args[:2] == ["rota", "import"] else 1), said


def test_db_upgrade_brings_a_new_database_up_to_date(tmp_path):
    env = bot_environment(DATABASE_URL=f"sqlite:///{tmp_path}/rr.db")
    result = subprocess.run(
        [sys.executable, "bot.py", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == "Database schema is up to date."
    assert result.stderr == ""
