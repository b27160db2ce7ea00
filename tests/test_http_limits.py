"""The HTTP listener refuses oversized and slow requests before any route sees them.

Over real sockets: the real `python bot.py` process (Slack over HTTP), and the real uvicorn
server on a thread for the Teams endpoint and the header deadline.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from handlers.http import make_http_app
from handlers.limits import LimitBodies
from storage.database import Database
from tests.support.builders import make_services
from tests.support.clock import FrozenClock
from tests.support.fake_microsoft import FakeMicrosoft
from tests.support.fake_slack import FakeSlack
from tests.support.http import serve
from tests.support.process import BotProcess, free_port, slack_environment
from tests.support.teams_activities import teams_bot

MB = 1024 * 1024


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[tuple[BotProcess, int]]:
    port = free_port()
    with FakeSlack() as fake:
        env = slack_environment(
            fake.url,
            f"sqlite:///{tmp_path / 'limits.db'}",
            DIGEST_CHANNEL="C0DIGEST",
            PORT=str(port),
        )
        process = BotProcess(env=env)
        process.wait_for("Uvicorn running", timeout=30)
        yield process, port
        assert process.stop() in (0, -15)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def push(port: int, head: bytes, body_chunk: bytes, up_to: int) -> tuple[bytes, int, float]:
    """Send `head`, then `body_chunk` again and again (up to `up_to` bytes) until the server
    answers or hangs up; its answer, how many body bytes went, and how long that took."""
    started = time.monotonic()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head)
        while sent < up_to:
            readable, _, _ = select.select([connection], [], [], 0)
            if readable:
                break
            try:
                connection.sendall(body_chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(body_chunk)
        try:
            answer = connection.recv(4096)
        except ConnectionResetError:
            answer = b""
    return answer, sent, time.monotonic() - started


def post_head(path: str, length: int | None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{framing}\r\n\r\n"
    ).encode()


@pytest.mark.slow
def test_huge_posts_get_413_at_once_and_the_bot_stays_small(
    bot: tuple[BotProcess, int],
) -> None:
    process, port = bot
    pid = process.process.pid
    before = rss_mb(pid)
    answers: list[tuple[bytes, int, float]] = []

    def attack() -> None:
        answers.append(push(port, post_head("/slack/events", 400_000_000), b"x" * MB, 400 * MB))

    attackers = [threading.Thread(target=attack) for _ in range(4)]
    for attacker in attackers:
        attacker.start()
    for attacker in attackers:
        attacker.join(timeout=60)
    # A chunked body declares nothing: it is read only up to Slack's 1 MB limit.
    chunk = f"{MB:x}\r\n".encode() + b"y" * MB + b"\r\n"
    answers.append(push(port, post_head("/slack/events", None), chunk, 400 * MB))
    after = rss_mb(pid)
    print(
        f"RSS before {before:.0f} MB, after {after:.0f} MB; answers in "
        + ", ".join(f"{elapsed:.2f} s after {sent / MB:.0f} MB" for _, sent, elapsed in answers)
    )

    assert len(answers) == 5
    for answer, sent, elapsed in answers:
        assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
        assert elapsed < 5 and sent < 100 * MB
    assert after - before < 30
    # The bot still answers.
    answer, _, _ = push(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"", 0)
    assert answer.startswith(b"HTTP/1.1 200")


def test_the_teams_endpoint_refuses_over_256_kb_before_checking_any_token(
    db: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    with FakeMicrosoft(tmp_path) as ms, teams_bot(make_services(db, clock), ms) as bot:
        port = int(urlparse(bot.url).port or 0)
        answer, _, _ = push(port, post_head("/api/messages", 300 * 1024), b"{" * 65536, MB)
        assert answer.startswith(b"HTTP/1.1 413")
        assert ms.calls == []  # not even the signing keys were fetched
        activity = b'{"type": "message", "text": "' + b" " * 200_000 + b'"}'
        answer, _, _ = push(port, post_head("/api/messages", len(activity)), activity, 1)
        assert answer.startswith(b"HTTP/1.1 401")  # within the limit: on to the token check


def test_headers_trickled_byte_by_byte_are_cut_off(db: Database) -> None:
    with serve(make_http_app(db, []), header_seconds=1.0) as url:
        port = int(urlparse(url).port or 0)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            started = time.monotonic()
            closed_after = None
            for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 200:
                try:
                    connection.sendall(bytes([byte]))
                    if connection.recv(1, socket.MSG_DONTWAIT) == b"":
                        closed_after = time.monotonic() - started
                        break
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    closed_after = time.monotonic() - started
                    break
                time.sleep(0.05)
        assert closed_after is not None and closed_after < 3
        # A prompt client on a kept-alive connection is served, twice.
        kept_alive = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(2):
            kept_alive.request("GET", "/healthz")
            answer = kept_alive.getresponse()
            assert answer.status == 200 and answer.read()
            time.sleep(0.7)  # twice that is longer than the header deadline
        kept_alive.close()


def test_a_body_trickled_too_slowly_gets_408_and_reaches_no_route() -> None:
    reached: list[str] = []

    async def endpoint(_request: Request) -> Response:
        reached.append("route")
        return Response("ok")

    app = Starlette(
        routes=[Route("/slack/events", endpoint, methods=["POST"])],
        middleware=[Middleware(LimitBodies, seconds=1.0)],
    )
    with serve(app) as url:
        port = int(urlparse(url).port or 0)
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(post_head("/slack/events", 1000))
            answer = b""
            for _ in range(100):
                try:
                    connection.sendall(b"x")
                    answer = connection.recv(4096, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    break
                if answer:
                    break
                time.sleep(0.05)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:60]
        assert time.monotonic() - started < 3 and reached == []
