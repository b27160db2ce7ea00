"""The HTTP server: Slack's and Teams' endpoints plus GET /healthz and /metrics, by uvicorn."""

from __future__ import annotations

import logging
import threading

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from reviews.health import Health
from storage.database import Database, DatabaseUnavailable

log = logging.getLogger(__name__)


def make_http_app(db: Database, routes: list[BaseRoute], health: Health | None = None) -> Starlette:
    """A Starlette app with the platforms' routes and a health check.

    /healthz answers 503 when the database does not answer or `health` names a problem (a
    stale sweep or drain, refused credentials); `problems` lists every reason, `warnings` what
    is wrong but mends itself (a platform unreachable: messages wait).
    """
    health = health or Health()

    def check() -> tuple[int, dict[str, object]]:
        problems, warnings = health.problems(), health.warnings()
        try:
            with db.unit_of_work() as uow:
                open_requests = uow.reviews.count_open()
                outbox = uow.outbox.count_by_state()
        except DatabaseUnavailable:
            body = {"status": "unavailable", "database": "unreachable"}
            return 503, {**body, "problems": ["the database does not answer", *problems]}
        return 503 if problems else 200, {
            "status": "unavailable" if problems else "ok",
            "database": "ok",
            "problems": problems,
            "warnings": warnings,
            "open_requests": open_requests,
            "outbox_pending": outbox.get("pending", 0) + outbox.get("sending", 0),
            "outbox_failed": outbox.get("failed", 0),
        }

    async def healthz(_request: Request) -> JSONResponse:
        status, body = await run_in_threadpool(check)
        return JSONResponse(body, status_code=status)

    return Starlette(routes=[Route("/healthz", healthz, methods=["GET"]), *routes])


class HttpServer:
    """uvicorn in the foreground or on a thread; `port` is the bound port once started."""

    def __init__(self, app: Starlette, host: str, port: int, log_level: str):
        config = uvicorn.Config(
            app, host=host, port=port, log_level=log_level.lower(), access_log=False, lifespan="off"
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
