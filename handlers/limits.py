"""What the HTTP listener refuses before any route (or any signature check) sees a request.

One unsigned 400 MB POST must not take the process, and the escalation running in it, down;
a client trickling its headers or body must not hold a connection for ever. So:
- every path has a body limit (the longest matching prefix of BODY_LIMITS wins): a declared
  Content-Length over it is refused at once, and a body streamed without one is read only up to
  the limit; either way 413 and the connection is closed without reading the rest;
- a body must arrive within BODY_SECONDS, and a request's headers within HEADER_SECONDS of the
  connection opening (or of the previous response), else the connection is closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADER_SECONDS = 10.0
BODY_SECONDS = 15.0
HEADER_BYTES = 16 * 1024  # h11 refuses a request whose headers are larger (431/400)
MAX_CONNECTIONS = 200  # uvicorn answers 503 beyond this many open connections or requests
KEEP_ALIVE_SECONDS = 5


@dataclass(frozen=True)
class BodyLimit:
    """Requests to paths starting with `prefix` may carry at most `max_bytes` of body.
    `refusal` is the (status, content type, body) sent instead; a plain JSON 413 by default;
    `headers` go with it (the public pages' security headers)."""

    prefix: str
    max_bytes: int
    refusal: tuple[int, str, bytes] | None = None
    headers: tuple[tuple[str, str], ...] = ()


# Slack's largest payloads (a modal with its state) stay well under 1 MB; a Teams activity with
# an Adaptive Card under 256 KB. The public pages bring their own (handlers.web.body_limit).
BODY_LIMITS: tuple[BodyLimit, ...] = (
    BodyLimit("/slack/", 1024 * 1024),
    BodyLimit("/api/messages", 256 * 1024),
)
DEFAULT_LIMIT = BodyLimit("/", 16 * 1024)


def limit_for(path: str, limits: Sequence[BodyLimit]) -> BodyLimit:
    """The limit of the longest prefix matching `path`; DEFAULT_LIMIT when none does."""
    matching = [limit for limit in limits if path.startswith(limit.prefix)]
    return max(matching, key=lambda limit: len(limit.prefix), default=DEFAULT_LIMIT)


class _TooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


class LimitBodies:
    """ASGI middleware: reads each request's body, within its limit and in time, before the app
    sees it, then hands the app that body."""

    def __init__(
        self, app: ASGIApp, limits: Sequence[BodyLimit] = BODY_LIMITS, seconds: float = BODY_SECONDS
    ):
        self.app = app
        self.limits = tuple(limits)
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"], self.limits)
        # h11 has already refused a Content-Length that is not all digits.
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and int(declared) > limit.max_bytes:
            await self._refuse(scope, send, limit)
            return
        try:
            body = await asyncio.wait_for(_read(receive, limit.max_bytes), self.seconds)
        except _TooLarge:
            await self._refuse(scope, send, limit)
            return
        except TimeoutError:
            await _answer(send, 408, "application/json", b'{"error": "body too slow"}')
            return
        except _ClientGone:
            return
        await self.app(scope, _replay(body, receive), send)

    async def _refuse(self, scope: Scope, send: Send, limit: BodyLimit) -> None:
        log.warning("refused a request to %s: body over %d bytes", limit.prefix, limit.max_bytes)
        status, content_type, body = limit.refusal or (
            413,
            "application/json",
            json.dumps({"error": f"request body over {limit.max_bytes} bytes"}).encode(),
        )
        await _answer(send, status, content_type, body, limit.headers)


async def _read(receive: Receive, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read, then whatever the connection says next."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _answer(
    send: Send,
    status: int,
    content_type: str,
    body: bytes,
    extra: tuple[tuple[str, str], ...] = (),
) -> None:
    """Answer and close: "Connection: close" makes uvicorn drop the connection rather than read
    (and discard) the rest of a body we refused."""
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *((name.lower().encode(), value.encode()) for name, value in extra),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers have not all arrived
    within `header_seconds` (uvicorn's keep-alive timeout only covers a silent connection)."""

    header_seconds = HEADER_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the headers are in
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm()  # waiting for the next request on this connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            log.warning(
                "closed a connection whose request headers took over %.0f s", self.header_seconds
            )
            self.transport.close()


def header_deadline(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class with its own header deadline (tests use a short one)."""
    return type("HeaderDeadline", (HeaderDeadlineProtocol,), {"header_seconds": seconds})
