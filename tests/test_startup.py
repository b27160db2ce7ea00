"""Finding 12: `python bot.py` starts whatever Slack says, and a bad DATABASE_URL is one line.

Real processes: Slack down or a revoked token at start must not stop the HTTP server, Teams or
the escalation sweep; it is said once, shown in /healthz, and retried.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.fake_slack import FakeSlack
from tests.support.process import BotProcess, run_bot, slack_environment

pytestmark = pytest.mark.slow


def dead_url() -> str:
    with FakeSlack() as gone:
        return gone.url


def slack_env(api_url: str, database_url: str, **more: str) -> dict[str, str]:
    return slack_environment(api_url, database_url, **more)


@pytest.fixture
def started() -> Iterator[list[BotProcess]]:
    processes: list[BotProcess] = []
    yield processes
    for process in processes:
        process.stop()


def healthz(env: dict[str, str], until: str, timeout: float = 20) -> requests.Response:
    """/healthz once its body mentions `until`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = requests.get(f"http://127.0.0.1:{env['PORT']}/healthz", timeout=10)
            if until in answer.text:
                return answer
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"/healthz never mentioned {until!r}")
        time.sleep(0.1)


def test_slack_unreachable_at_start_is_one_line_and_the_bot_serves_on(
    database_url: str, started: list[BotProcess]
) -> None:
    env = slack_env(dead_url(), database_url)
    bot = BotProcess(env=env)
    started.append(bot)
    answer = healthz(env, "cannot be reached")
    assert answer.status_code == 200
    assert answer.json()["warnings"] == [
        "slack cannot be reached (network: URLError); messages wait and are retried"
    ]
    assert bot.process.poll() is None
    bot.stop()
    said = [line for line in bot.log if "cannot be reached" in line]
    assert len(said) == 1 and "everything else carries on" in said[0]
    # No DIGEST_CHANNEL in this environment: said once, with where the alarms go instead.
    assert len([line for line in bot.log if "DIGEST_CHANNEL is not set" in line]) == 1
    assert "cover gaps and failed messages are reported in the outreach channel" in "".join(bot.log)
    assert not [line for line in bot.log if "Traceback" in line]
    # Nothing an operator must puzzle over: bolt's own "`token` will be unused" is not said.
    assert not [line for line in bot.log if "slack_bolt" in line], bot.log


def test_a_revoked_token_at_start_keeps_the_bot_up_and_healthz_503(
    database_url: str, started: list[BotProcess]
) -> None:
    with FakeSlack() as fake:
        # Revoked for every call, as Slack does: with no digest channel, the rota's gap warnings
        # go to the outreach channel at start, and a post Slack took would clear the alarm.
        for method in ("auth.test", "chat.postMessage"):
            fake.fail(method, times=1000, error="token_revoked")
        env = slack_env(fake.url, database_url)
        bot = BotProcess(env=env)
        started.append(bot)
        answer = healthz(env, "refuses")
        assert answer.status_code == 503
        assert answer.json()["problems"] == [
            "slack refuses the bot's credentials (Slack refused the token: token_revoked)"
        ]
        bot.stop()
    assert not [line for line in bot.log if "Traceback" in line]


def test_socket_mode_with_slack_down_keeps_running_and_says_so_once(
    database_url: str, started: list[BotProcess]
) -> None:
    env = slack_env(dead_url(), database_url, SLACK_APP_TOKEN="xapp-test")
    bot = BotProcess(env=env)
    started.append(bot)
    bot.wait_for("Socket Mode cannot connect")
    time.sleep(1)
    assert bot.process.poll() is None, "the scheduler and everything else carry on"
    bot.stop()
    assert not [line for line in bot.log if "Traceback" in line]


@pytest.mark.parametrize(
    "url", ["sqlite+nope://", "postgresql+psycopg2://rr:secret@db/rr", "postgresql://rr@db:x/rr"]
)
def test_a_bad_database_url_is_one_line_and_exit_2(url: str) -> None:
    result = run_bot(DATABASE_URL=url)
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("rapidreview: DATABASE_URL: not a URL the bot can use")
    assert "secret" not in line


def test_a_port_already_in_use_is_one_line_naming_the_setting_and_exit_2(database_url: str) -> None:
    """uvicorn said only "[Errno 98] address already in use" and exited 3."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_bot(**slack_env(dead_url(), database_url, PORT=str(port)))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"rapidreview: PORT / HOST: cannot listen on 127.0.0.1:{port} (Address already in use): "
        "another program (or another copy of the bot) may be using the port, or HOST is not an "
        "address of this machine. Set PORT to a free port, or HOST to this machine's address "
        "(0.0.0.0: all of them)."
    )
