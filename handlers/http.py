"""The HTTP server: Slack's and Teams' endpoints plus GET /healthz and /metrics, by uvicorn."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from handlers.limits import (
    BODY_LIMITS,
    HEADER_BYTES,
    HEADER_SECONDS,
    KEEP_ALIVE_SECONDS,
    MAX_CONNECTIONS,
    BodyLimit,
    LimitBodies,
    header_deadline,
)
from handlers.one_at_a_time import OneAtATime, Waited
from reviews.health import Health
from storage.database import Database, DatabaseUnavailable

log = logging.getLogger(__name__)

# Seconds /healthz waits for the database before answering 503 without it: inside a monitor's
# usual 10 s, and past the 3 s a new connection is given (storage.database.POSTGRES_CONNECT).
DATABASE_WAIT = 5.0


def make_http_app(
    db: Database,
    routes: Sequence[BaseRoute],
    body_limits: Sequence[BodyLimit] = BODY_LIMITS,
    *,
    health: Health | None = None,
    error_pages: Mapping[Any, Any] | None = None,
) -> Starlette:
    """A Starlette app with the platforms' routes and a health check; every request's body is
    read within its path's limit (handlers/limits.py) before any route sees it.

    /healthz answers 503 when the database does not answer, cannot write (read-only, disk full)
    or `health` names a problem (a stale sweep or drain, refused credentials); `problems` lists
    every reason, `warnings` what is wrong but mends itself (a platform unreachable: messages
    wait) or soon will be (little disk left). A SQLite database's free disk is
    `disk_free_bytes`. A platform another process's message found unreachable (the sender
    process's, another replica's) is a warning here too. `error_pages` are Starlette exception
    handlers (the public pages' own 404 and 405).
    """
    health = health or Health()

    def look() -> tuple[int, dict[str, int], dict[str, str], str | None]:
        with db.reading() as uow:
            open_requests = uow.reviews.count_open()
            outbox = uow.outbox.count_by_state()
            elsewhere = uow.platforms.unreachable_now()
        return open_requests, outbox, elsewhere, db.cannot_write()

    looking = OneAtATime(look, name="health")

    def check() -> tuple[int, dict[str, object]]:
        problems, warnings = health.problems(), health.warnings()
        unreachable = {"status": "unavailable", "database": "unreachable"}
        try:
            open_requests, outbox, elsewhere, cannot = looking.result(DATABASE_WAIT)
        except DatabaseUnavailable:
            return 503, {**unreachable, "problems": ["the database does not answer", *problems]}
        except Waited as waited:
            said = f"the database does not answer (asked {waited.seconds:.0f} s ago)"
            return 503, {**unreachable, "problems": [said, *problems]}
        warnings = [*warnings, *health.warnings_elsewhere(elsewhere)]
        if cannot:
            problems = [cannot, *problems]
        free = db.faults.free_bytes()
        if low := db.faults.space_warning(free):
            warnings = [low, *warnings]
        return 503 if problems else 200, {
            "status": "unavailable" if problems else "ok",
            "database": "refuses writes" if cannot else "ok",
            "problems": problems,
            "warnings": warnings,
            "open_requests": open_requests,
            "outbox_pending": outbox.get("pending", 0) + outbox.get("sending", 0),
            "outbox_failed": outbox.get("failed", 0),
            **({} if free is None else {"disk_free_bytes": free}),
            **health.described(),
        }

    async def healthz(_request: Request) -> JSONResponse:
        status, body = await run_in_threadpool(check)
        return JSONResponse(body, status_code=status)

    app = Starlette(
        routes=[Route("/healthz", healthz, methods=["GET"]), *routes],
        middleware=[Middleware(LimitBodies, limits=body_limits)],
        exception_handlers=dict(error_pages or {}),
    )
    # Starlette's trailing-slash redirect builds its address from the Host header, which any
    # client can set: no address of ours ends in a slash, so a slash is simply not found.
    app.router.redirect_slashes = False
    return app


class NearestProxy:
    """FORWARDED_ALLOW_IPS=*: any address may be the proxy in front of the bot, and the client
    is whom that proxy says connected to it, the LAST address of X-Forwarded-For. uvicorn's own
    "*" took the first, which the visitor writes themselves when the proxy appends to what they
    sent (nginx's $proxy_add_x_forwarded_for, Azure Application Gateway, AWS ALB): each request
    could name a new address, and the public pages' hourly limit held nobody."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            forwarded = [v for n, v in scope["headers"] if n == b"x-forwarded-for"]
            host, port = _host_port(b",".join(forwarded).decode("latin1").split(",")[-1].strip())
            if host:
                scope["client"] = (host, port)
            proto = dict(scope["headers"]).get(b"x-forwarded-proto", b"").decode("latin1")
            if proto.strip() in ("http", "https"):
                scope["scheme"] = proto.strip()
        await self.app(scope, receive, send)


def _host_port(value: str) -> tuple[str, int]:
    """An X-Forwarded-For entry as (host, port): "[2001:db8::1]:443", "192.0.2.1:5000" (some
    proxies add the port) or a bare address (port 0)."""
    host, port = value, ""
    if value.startswith("[") and "]" in value:
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":")
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    return host, int(port) if port.isascii() and port.isdigit() and len(port) <= 5 else 0


class HttpServer:
    """uvicorn in the foreground or on a thread; `port` is the bound port once started.

    Slow or greedy clients are cut off (handlers/limits.py): headers must arrive within
    `header_seconds`, an idle keep-alive connection closes after KEEP_ALIVE_SECONDS, headers
    over HEADER_BYTES are refused, and beyond MAX_CONNECTIONS uvicorn answers 503.
    """

    def __init__(
        self,
        app: Starlette,
        host: str,
        port: int,
        log_level: str,
        *,
        header_seconds: float = HEADER_SECONDS,
        forwarded_allow_ips: str = "127.0.0.1",
    ):
        any_proxy = forwarded_allow_ips.strip() == "*"
        config = uvicorn.Config(
            NearestProxy(app) if any_proxy else app,
            host=host,
            port=port,
            log_level=log_level.lower(),
            access_log=False,
            lifespan="off",
            # uvicorn's own lines go through the root handler, as text or JSON (LOG_FORMAT).
            log_config=None,
            http=header_deadline(header_seconds),
            limit_concurrency=MAX_CONNECTIONS,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            h11_max_incomplete_event_size=HEADER_BYTES,
            # Whose X-Forwarded-For names the client (the address the public pages count).
            # "*" is NearestProxy's: uvicorn's own took the address the visitor wrote.
            proxy_headers=not any_proxy,
            forwarded_allow_ips=forwarded_allow_ips or [],
        )
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        self.server.run()

    def start_in_thread(self) -> None:
        self.thread = threading.Thread(target=self.server.run, name="http", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
