"""Reads never take the write lock: a long export or health check holds no request up.

On SQLite every transaction used to open with BEGIN IMMEDIATE, so a CLI export reading the live
file kept the bot from storing a request for up to 30 s (issue 11, finding 11).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from handlers.slack.forms import REQUEST_FORM
from storage.database import Database
from tests.support.builders import make_services
from tests.support.clock import FrozenClock
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import SlackBot, request_form, slack_bot, view_submission


@pytest.fixture
def bot(db: Database, clock: FrozenClock) -> Iterator[SlackBot]:
    with FakeSlack() as fake, slack_bot(make_services(db, clock), fake) as bot:
        yield bot


def test_a_request_is_raised_while_an_export_holds_a_read_open(
    bot: SlackBot, database_url: str
) -> None:
    exporter = Database(database_url)  # another process's connection, as `bot.py export` has
    try:
        with exporter.reading() as uow:
            assert uow.reviews.count_open() == 0  # the read transaction has begun
            form = request_form()
            answer = bot.post(view_submission(REQUEST_FORM, form, user_id="U0WARDNURSE"))
            assert "RR-0001 raised" in json.dumps(answer.json())
    finally:
        exporter.dispose()
    with bot.services.db.reading() as uow:
        assert uow.reviews.count_open() == 1


def test_health_answers_while_a_request_is_being_written(bot: SlackBot) -> None:
    import requests

    health = bot.events_url.replace("/slack/events", "/healthz")
    with bot.services.db.unit_of_work() as uow:
        uow.reviews.count_open()  # this transaction holds the write lock until the block ends
        answer = requests.get(health, timeout=10)
    assert answer.status_code == 200 and answer.json()["status"] == "ok"


def test_an_outbox_tick_with_nothing_to_send_waits_for_no_writer(bot: SlackBot) -> None:
    # Four ticks a second on every replica: on SQLite each used to queue for the one writer
    # lock, behind (and ahead of) every nurse's submission, to find nothing.
    import threading

    finished = threading.Event()
    with bot.services.db.unit_of_work() as uow:
        uow.reviews.count_open()  # this transaction holds the write lock until the block ends

        def tick_once() -> None:
            bot.drain()
            finished.set()

        tick = threading.Thread(target=tick_once)
        tick.start()
        assert finished.wait(timeout=5), "an idle outbox tick waited for the writer"
    tick.join()
