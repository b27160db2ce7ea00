"""LOG_FORMAT=json: every line the real process writes is one JSON object, with the request's
reference when the line is about one request."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from handlers.logs import JsonFormatter
from reviews.clock import SystemClock
from reviews.service import raise_review
from settings import SettingsError, load_settings
from storage.database import Database
from tests.support.builders import NURSE, make_services, request
from tests.support.fake_slack import FakeSlack
from tests.support.process import BotProcess, slack_environment


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
