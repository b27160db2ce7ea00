"""`/rapidreview`'s forms: on PostgreSQL opened by the bot's sender process, on its other core
(handlers/slack/form_relay.py), and by the bot itself whenever the sender cannot take them."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from unittest import mock

import pytest
import requests
from slack_sdk import WebClient

from handlers.slack import form_relay
from handlers.slack.checkin import CHECKIN_FORM
from handlers.slack.form_relay import FormAsked, FormOpener, FormRelay
from handlers.slack.forms import REQUEST_FORM
from reviews.clock import SystemClock
from sender_process import (
    GIVE_UP_AFTER,
    GIVE_UP_SILENT,
    HAND_OVER_SILENT,
    LINE_BYTES,
    LINE_LAG,
    SENDER_ENV,
    SILENT_AFTER,
    SenderProcess,
)
from settings import DEFAULT_FALLBACK
from storage.database import Database
from tests.support.builders import make_services
from tests.support.databases import sqlite_database
from tests.support.fake_slack import Call, FakeSlack
from tests.support.process import free_port, local_ports, start_slack_bot
from tests.support.slack_requests import slash_command
from tests.support.surge import POLICY
from tests.support.waiting import eventually

ASKED = FormAsked(
    form="request", trigger_id="trig-1", response_url="https://x/r", user_id="U0WARDNURSE"
)


@pytest.fixture
def fake():
    with FakeSlack() as slack:
        yield slack


def opened(fake: FakeSlack, trigger_id: str, timeout: float = 10) -> Call:
    """The one views.open Slack received for `trigger_id`."""
    eventually(
        lambda: any(c.body.get("trigger_id") == trigger_id for c in fake.called("views.open")),
        f"the form for {trigger_id} opened",
        timeout,
    )
    calls = [c for c in fake.called("views.open") if c.body.get("trigger_id") == trigger_id]
    assert len(calls) == 1, f"{trigger_id}'s form was opened {len(calls)} times"
    return calls[0]


def told(fake: FakeSlack, answer: str, count: int = 1, timeout: float = 10) -> list[str]:
    """What was said privately through the response_url named `answer`, once it was said at
    least `count` times."""

    def said() -> list[str]:
        calls = fake.called("response_url")
        return [str(c.body.get("text")) for c in calls if c.path.endswith(f"/response/{answer}")]

    eventually(lambda: len(said()) >= count, f"{count} answer(s) to {answer}", timeout)
    return said()


@pytest.mark.slow
@pytest.mark.postgres
def test_forms_open_from_the_sender_process_and_from_the_bot_while_it_hangs(
    fake, postgres_url, tmp_path
):
    policy = tmp_path / "escalation.toml"
    policy.write_text(POLICY)
    port = free_port()
    bot = start_slack_bot(fake.url, postgres_url, policy, PORT=str(port))
    url = f"http://127.0.0.1:{port}"

    def command(text: str, trigger_id: str, answer: str = "r1") -> None:
        signed = slash_command(text, trigger_id=trigger_id, response_url=fake.response_url(answer))
        reply = requests.post(
            f"{url}/slack/events", data=signed.body, headers=signed.headers, timeout=10
        )
        assert reply.status_code == 200, reply.text

    def state() -> str:
        return requests.get(f"{url}/healthz", timeout=10).json()["sender_process"]

    sender = None
    try:
        eventually(lambda: state() == "sending", "the sender process sending", 30)
        sender = bot.sender()
        assert sender is not None
        bot.wait_for(f"the sender process ({sender}) opens /rapidreview's forms")

        command("", "trig-request")
        form = opened(fake, "trig-request")
        assert form.body["view"]["callback_id"] == REQUEST_FORM
        assert form.connection[1] in local_ports(sender), "not opened by the sender process"
        command("checkin", "trig-checkin")
        assert opened(fake, "trig-checkin").body["view"]["callback_id"] == CHECKIN_FORM

        # Slack refuses a trigger that waited too long: the sender tells the nurse, as the bot
        # would, with where to turn meanwhile.
        fake.fail("views.open", error="expired_trigger_id")
        command("", "trig-expired", answer="expired")
        [said] = told(fake, "expired")
        assert "could not be opened; try /rapidreview again" in said and DEFAULT_FALLBACK in said

        # Hung: what was handed to it just before is never opened, and once the bot has heard
        # nothing for HAND_OVER_SILENT it opens forms itself.
        fake.calls.clear()
        os.kill(sender, signal.SIGSTOP)
        command("", "trig-stuck", answer="stuck")
        stuck_at = time.monotonic()
        time.sleep(HAND_OVER_SILENT + 1.5)
        asked_at = time.monotonic()
        command("", "trig-hung")
        form = opened(fake, "trig-hung", timeout=5)
        assert time.monotonic() - asked_at < 2  # within Slack's 3 s for the trigger
        assert form.connection[1] not in local_ports(sender)
        assert form.connection[1] in local_ports(bot.process.pid)
        bot.wait_for("this process opened 1 form(s) the sender process could not take")
        # The nurse whose form it holds is told once it has been silent GIVE_UP_SILENT (Slack's
        # trigger spent), long before it is killed (SILENT_AFTER).
        [said] = told(fake, "stuck")
        assert time.monotonic() - stuck_at < SILENT_AFTER / 2
        assert "may not have opened. If you see no form, try /rapidreview again" in said
        assert DEFAULT_FALLBACK in said
        # The nurse whose trigger expired was told by the sender; if it froze after telling her
        # and before saying it was done (a loaded machine widens that moment), the bot cannot
        # know she was told, and tells her too that her form may not have opened.
        assert set(told(fake, "expired", count=0)) <= {said}
        assert f"the sender process ({sender}) has said nothing for" in "".join(bot.log)
        # It dies: nobody is told twice, and nothing is opened twice.
        fake.calls.clear()
        os.kill(sender, signal.SIGKILL)
        bot.wait_for("the sender process stopped (exit code -9)")
        eventually(lambda: state() == "sending", "a new sender process sending", 30)
        assert not fake.called("response_url")
        assert not fake.called("views.open")  # the trigger may have been used
        command("", "trig-again")
        assert opened(fake, "trig-again").connection[1] in local_ports(bot.sender() or 0)
    finally:
        if sender is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(sender, signal.SIGCONT)  # a stopped one would keep the bot's log open
        bot.stop()
    assert "trig-stuck" not in "".join(bot.log) and "/response/" not in "".join(bot.log)


def _sender(script: str, now: list[float], **kwargs: object) -> SenderProcess:
    """A SenderProcess running `script` (Python) as its sender, on the clock `now`."""
    return SenderProcess(
        [
            sys.executable,
            "-c",
            f"import os, sys; beats = int(os.environ[{SENDER_ENV!r}]); {script}",
        ],
        monotonic=lambda: now[0],
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_form_handed_over_is_written_whole_only_to_a_sender_heard_from_lately(tmp_path):
    """hand_over writes a numbered line to the sender's input only while it takes lines and
    has ended a drain within HAND_OVER_SILENT; otherwise, and for a line too long to be written
    whole, it writes nothing and says so, and the bot opens the form itself."""
    now = [0.0]
    copy = tmp_path / "lines"
    process = _sender(
        "os.write(beats, b'.L'); import shutil; "
        f"shutil.copyfileobj(sys.stdin.buffer, open({str(copy)!r}, 'wb'), 1)",
        now,
    )
    line = ASKED.line()
    try:
        assert not process.hand_over(line)  # not started: nothing written
        process.start()
        eventually(lambda: process.hand_over(line), "the sender heard from, taking a line", 20)
        assert not process.hand_over(b"x" * LINE_BYTES + b"\n")  # could interleave: refused
        assert not process.hand_over(b"no newline")
        assert not process.hand_over(b"two\nlines\n")
        now[0] += HAND_OVER_SILENT + 0.1
        assert not process.hand_over(line)  # silent too long (hung, or busy): not handed over
    finally:
        process.stop()
    assert copy.read_bytes() == b"0 " + line  # the one line taken, numbered, whole and once
    assert not process.hand_over(line)  # stopped


def test_forms_go_to_a_sender_whose_drain_is_busy_and_come_back_done(tmp_path):
    """A drain may take 5 s in a surge, with no beat meanwhile: the sender still says it takes
    lines, from a thread of its own, so forms still go to it, and it says when each is done."""
    copy = tmp_path / "lines"
    busy_drain = (
        "import sys, threading; from sender_process import serve\n"
        "class Busy:\n"
        "    def shutdown(self, wait): pass\n"
        "def opened(line, done):\n"
        f"    open({str(copy)!r}, 'ab').write(line + b'\\n'); done()\n"
        "sys.exit(serve(lambda beat: Busy(), threading.Event(), on_line=opened))"
    )
    process = SenderProcess([sys.executable, "-c", busy_drain])
    process.start()
    try:
        eventually(lambda: process.hand_over(ASKED.line()), "a form handed over", 20)
        assert process.state == "starting"  # no drain has ended
        for _ in range(3):
            time.sleep(HAND_OVER_SILENT / 2)
            assert process.hand_over(ASKED.line())
        eventually(lambda: (process.check(), process._handed)[1] == {}, "all said done", 10)
    finally:
        process.stop()
    assert copy.read_bytes() == ASKED.line() * 4


def test_forms_a_stopped_sender_had_not_done_are_handed_back():
    """The bot stopping (or the sender killed at STOP_WITHIN) with forms not done: each nurse
    is told, as when a sender dies."""
    lost: list[list[bytes]] = []
    never_done = "os.write(beats, b'.L'); sys.stdin.buffer.read()"  # ends when its input does
    process = _sender(never_done, [0.0], on_lost=lost.append)
    process.start()
    try:
        eventually(lambda: process.hand_over(ASKED.line()), "a form handed over", 20)
    finally:
        process.stop()
    assert lost == [[ASKED.line()]]


def test_a_sender_that_does_not_say_it_opens_forms_is_handed_none():
    """An older sender on disk, or one started without Slack, beats but never says it takes
    lines: every form stays with the bot."""
    now = [0.0]
    # It reads its input (to its end: told to stop) and never says it takes lines.
    process = _sender("os.write(beats, b'.'); sys.stdin.buffer.read()", now)
    process.start()
    try:
        eventually(lambda: (process.check(), process.state)[1] == "sending", "heard from", 20)
        assert not process.hand_over(ASKED.line())
    finally:
        process.stop()


def test_a_sender_behind_with_its_forms_is_handed_none_until_it_catches_up():
    now = [0.0]
    lost: list[list[bytes]] = []
    # Says a line is done only when the next arrives: always one behind.
    process = _sender(
        "os.write(beats, b'.L'); last = None\n"
        "for line in sys.stdin.buffer:\n"
        "    os.write(beats, b'.')\n"
        "    if last is not None: os.write(beats, b'+' + last + b'\\n')\n"
        "    last = line.split(b' ')[0]",
        now,
        on_lost=lost.append,
    )
    process.start()
    try:
        eventually(lambda: process.hand_over(ASKED.line()), "line 0 handed over", 20)
        now[0] += LINE_LAG + 0.1
        assert not process.hand_over(ASKED.line())  # line 0 not done after LINE_LAG
        now[0] -= LINE_LAG + 0.1
        assert process.hand_over(ASKED.line())  # line 0 is recent again on this clock
        eventually(lambda: (process.check(), process._handed)[1].keys() == {1}, "0 done", 20)
        now[0] += LINE_LAG + 0.1
        assert not process.hand_over(ASKED.line())  # line 1 is behind now
        os.kill(process.pid or 0, signal.SIGKILL)
        eventually(lambda: (process.check(), lost)[1], "the sender's end noticed", 20)
    finally:
        process.stop()
    assert lost == [[ASKED.line()]]  # line 1, never done: the bot tells its nurse


def test_a_hung_sender_s_forms_are_given_up_within_seconds_not_at_its_kill():
    """A sender that has said nothing for GIVE_UP_SILENT (hung: Slack's trigger is spent) has
    its forms given up then, so each nurse is told within seconds, not when the sender is
    killed SILENT_AFTER on; its end tells nobody twice."""
    now = [0.0]
    lost: list[list[bytes]] = []
    hangs = "os.write(beats, b'.L'); sys.stdin.buffer.read()"  # says it takes lines, then nothing
    process = _sender(hangs, now, on_lost=lost.append)
    process.start()
    try:
        eventually(lambda: process.hand_over(ASKED.line()), "a form handed over", 20)
        now[0] += GIVE_UP_SILENT - 0.1
        process.check()
        assert lost == []  # it may yet open it: Slack's trigger is not spent
        now[0] += 0.2
        process.check()
        assert lost == [[ASKED.line()]]
        assert SILENT_AFTER > GIVE_UP_SILENT * 5  # long before it would be killed
    finally:
        process.stop()
    assert lost == [[ASKED.line()]]  # its stop does not tell the nurse again


def test_a_form_a_talking_sender_never_says_is_done_is_given_up_and_forms_go_to_it_again():
    """A sender that goes on saying it takes lines but never says a form is done (a lost reply,
    a thread stuck) has the form given up after GIVE_UP_AFTER: its nurse is told, and the bot
    hands forms to it again instead of opening every one itself until a restart."""
    now = [0.0]
    lost: list[list[bytes]] = []
    talks = (  # reads the lines, never says one is done, and ends when its input does
        "import threading, time\n"
        "def talk():\n"
        "    while True: os.write(beats, b'.L'); time.sleep(0.05)\n"
        "threading.Thread(target=talk, daemon=True).start(); sys.stdin.buffer.read()"
    )
    process = _sender(talks, now, on_lost=lost.append)
    process.start()
    try:
        eventually(lambda: process.hand_over(ASKED.line()), "a form handed over", 20)

        def later(seconds: float) -> None:
            time.sleep(0.2)  # it says it takes lines meanwhile, heard at the clock's new time
            now[0] += seconds

        later(LINE_LAG + 0.1)
        assert not process.hand_over(ASKED.line())  # behind: the bot opens this one itself
        later(GIVE_UP_AFTER - LINE_LAG - 0.2)
        process.check()
        assert lost == []
        later(0.2)
        process.check()
        assert lost == [[ASKED.line()]]
        assert process.hand_over(ASKED.line())  # handed forms again
    finally:
        process.stop()


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"not json",
        b"[]",
        b'{"form": "request"}',
        b'{"form": "outcome", "trigger_id": "t", "response_url": "u", "user_id": "U"}',
        b'{"form": "request", "trigger_id": 1, "response_url": "u", "user_id": "U"}',
    ],
)
def test_a_line_that_is_not_a_form_to_open_is_refused(line):
    with pytest.raises(ValueError, match="not a form to open"):
        FormAsked.from_line(line)


def test_a_form_asked_survives_its_line():
    assert FormAsked.from_line(ASKED.line().rstrip(b"\n")) == ASKED


def test_the_bot_opens_the_form_itself_when_the_sender_will_not_take_it(fake, tmp_path):
    with sqlite_database(str(tmp_path)) as url:
        db = Database(url)
        services = make_services(db, SystemClock())
        client = WebClient(token="xoxb-test", base_url=fake.url)
        relay, handed = FormRelay(services, client), []
        relay.open(ASKED, print)  # no sender at all
        relay.hand_over = lambda line: handed.append(line) or False  # full, or silent
        relay.open(ASKED, print)
        assert [c.body["trigger_id"] for c in fake.called("views.open")] == ["trig-1"] * 2
        assert handed == [ASKED.line()]
        relay.hand_over = lambda line: True
        relay.open(ASKED, print)
        assert len(fake.called("views.open")) == 2  # taken: the sender opens it
        db.dispose()


def test_the_sender_tells_the_nurse_when_slack_refuses_or_ignores_the_form_or_it_waited(
    fake, tmp_path
):
    with sqlite_database(str(tmp_path)) as url:
        db = Database(url)
        client = WebClient(token="xoxb-test", base_url=fake.url, retry_handlers=[])
        opener, done = FormOpener(make_services(db, SystemClock()), client), []

        def form(trigger: str, kind: str = "checkin") -> bytes:
            return FormAsked(kind, trigger, fake.response_url(trigger), "U0WARDNURSE").line()

        fake.fail("views.open", error="expired_trigger_id")
        opener(form("refused"), lambda: done.append("refused"))
        opener(b"garbage", lambda: done.append("garbage"))  # logged, and done: not a form
        eventually(lambda: len(done) == 2, "both done", 10)
        # Slack takes the call and its answer never comes: the form may have opened.
        fake.fail("views.open", lands=True, status=0)
        opener(form("ignored", "request"), lambda: done.append("ignored"))
        eventually(lambda: len(done) == 3, "done", 10)
        with mock.patch.object(form_relay, "FORM_WAIT", -1.0):  # as if it waited for a thread
            opener(form("waited"), lambda: done.append("waited"))
            eventually(lambda: len(done) == 4, "done", 10)
        opener.stop()
        db.dispose()
    texts = [c.body["text"] for c in fake.called("response_url")]
    assert texts == [
        "The check-in form could not be opened; try /rapidreview checkin again.",
        "The request form may not have opened. If you see no form, try /rapidreview again. "
        f"If the patient is deteriorating: {DEFAULT_FALLBACK}",
        "The check-in form could not be opened; try /rapidreview checkin again.",
    ]
    assert sorted(done) == ["garbage", "ignored", "refused", "waited"]
    assert [c.body["trigger_id"] for c in fake.called("views.open")] == ["refused", "ignored"]
