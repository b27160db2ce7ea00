"""LOG_FORMAT=json: every line the real process writes is one JSON object, with the request's
reference when the line is about one request."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from handlers.logs import JsonFormatter
from reviews.clock import SystemClock
from reviews.service import raise_review
from settings import SettingsError, load_settings, log_format_of
from storage.database import Database
from tests.support.builders import NURSE, make_services, request
from tests.support.fake_slack import FakeSlack
from tests.support.process import BotProcess, run_bot, slack_environment


@pytest.mark.slow
def test_every_line_is_json_with_the_reference(database_url: str) -> None:
    db = Database(database_url)
    raise_review(services=make_services(db, SystemClock()), request=request(), by=NURSE)
    db.dispose()
    with FakeSlack() as fake:
        fake.fail("chat.postMessage", status=503)  # the card's first try: logged, retried
        env = slack_environment(
            fake.url,
            database_url,
            LOG_FORMAT="json",
        )
        bot = BotProcess(env=env)
        try:
            bot.wait_for('"reference": "RR-0001"', timeout=30)
        finally:
            bot.stop()
    lines = [json.loads(line) for line in bot.log if line.strip()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert any(line["logger"].startswith("uvicorn") for line in lines), "uvicorn's lines too"
    about = [line for line in lines if line.get("reference") == "RR-0001"]
    assert about and all("RR-0001" in line["message"] for line in about)
    assert "9990000018" not in "".join(bot.log)


def test_an_exception_stays_inside_its_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["level"] == "ERROR" and "ValueError: boom" in parsed["exception"]
    assert "reference" not in parsed


def test_an_unknown_log_format_is_one_line_naming_it() -> None:
    with pytest.raises(SettingsError, match="LOG_FORMAT: must be text or json"):
        load_settings({"LOG_FORMAT": "xml"}, env_file=None)


def refusal_of(tmp_path: Path, case: str, **settings: str) -> dict[str, str]:
    """The environment of a `python bot.py` that must refuse to start, for `case`."""
    broken_policy = tmp_path / "policy.toml"
    broken_policy.write_text("[[levels]]\nafter = 'soon'\n")
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path}/rr.db",
        **{
            "a refused setting": {"TIMEZONE": "Europe/Atlantis"},
            "a broken policy file": {"ESCALATION_POLICY": str(broken_policy)},
            "an unreachable database": {
                "DATABASE_URL": "postgresql+psycopg://rr:Sekrit-pw@127.0.0.1:1/trust"
            },
        }[case],
        **settings,
    }


REFUSALS = ["a refused setting", "a broken policy file", "an unreachable database"]


@pytest.mark.slow
@pytest.mark.parametrize("case", REFUSALS)
def test_a_refusal_at_start_is_one_json_line_with_log_format_json(tmp_path: Path, case: str):
    """A log shipper reading the bot's stderr as JSON must take the line that says why it did
    not start, like any other; in text, the line reads as it always has, with the same words."""
    text = run_bot(**refusal_of(tmp_path, case))
    as_json = run_bot(**refusal_of(tmp_path, case, LOG_FORMAT="json"))
    assert text.returncode == as_json.returncode == 2
    assert text.stdout == as_json.stdout == ""
    [plain] = text.stderr.splitlines()
    [line] = as_json.stderr.splitlines()
    said = json.loads(line)
    assert said.keys() == {"time", "level", "logger", "message"}
    assert said["level"] == "ERROR" and said["logger"] == "rapidreview"
    assert plain == f"rapidreview: {said['message']}"
    assert "Sekrit-pw" not in plain + line


@pytest.mark.slow
def test_an_unknown_log_format_is_refused_in_plain_text(tmp_path: Path) -> None:
    result = run_bot(**refusal_of(tmp_path, "a broken policy file", LOG_FORMAT="xml"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "rapidreview: LOG_FORMAT: must be text or json, got 'xml'"
    ]


def test_the_log_format_for_a_refusal_is_read_as_the_settings_are(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("LOG_FORMAT=json\n")
    assert log_format_of({}, env_file) == "json"
    assert log_format_of({"LOG_FORMAT": " JSON "}, None) == "json"
    assert log_format_of({"LOG_FORMAT": "text"}, env_file) == "text"  # the environment wins
    assert log_format_of({"LOG_FORMAT": "xml"}, None) == "text"
    assert log_format_of({}, None) == "text"


@pytest.mark.slow
def test_an_unexpected_error_at_start_is_json_too(tmp_path: Path) -> None:
    """A database a newer release has upgraded: Alembic cannot find its revision, and the
    traceback was plain text in a JSON log."""
    import sqlite3

    newer = tmp_path / "rr.db"
    with sqlite3.connect(newer) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        connection.execute("INSERT INTO alembic_version VALUES ('ffffffffffff')")
    connection.close()
    result = run_bot("db", "upgrade", DATABASE_URL=f"sqlite:///{newer}", LOG_FORMAT="json")
    assert result.returncode == 1  # as Python exits on an uncaught error
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(line["level"], line["logger"]) for line in lines] == [("CRITICAL", "rapidreview")]
    assert "Can't locate revision identified by 'ffffffffffff'" in lines[0]["exception"]


def test_an_error_nobody_caught_in_a_thread_is_one_json_line_naming_it() -> None:
    """A thread's uncaught error was Python's multi-line traceback in the JSON log (only
    sys.excepthook was set): the shipper took it as a dozen lines of nothing, and nobody saw
    which thread had stopped. The process carries on, as it would have."""
    import subprocess

    code = (
        "import threading\n"
        "from handlers.logs import configure\n"
        "configure('INFO', 'json')\n"
        "thread = threading.Thread(target=lambda: 1 / 0, name='teams-keys')\n"
        "thread.start(); thread.join()\n"
        "print('still running')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout == "still running\n"
    [line] = [json.loads(line) for line in result.stderr.splitlines()]
    assert (line["level"], line["logger"]) == ("ERROR", "rapidreview")
    assert "thread teams-keys stopped" in line["message"]
    assert "ZeroDivisionError: division by zero" in line["exception"]
