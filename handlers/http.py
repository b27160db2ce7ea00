"""The HTTP server: Slack's and Teams' endpoints plus GET /healthz, served by uvicorn."""

from __future__ import annotations

import logging
import threading

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from storage.database import Database, DatabaseUnavailable

log = logging.getLogger(__name__)


def make_http_app(db: Database, routes: list[BaseRoute]) -> Starlette:
    """A Starlette app with the platforms' routes and a health check."""

    def health() -> tuple[int, dict[str, object]]:
        try:
            with db.reading() as uow:
                open_requests = uow.reviews.count_open()
                outbox = uow.outbox.count_by_state()
        except DatabaseUnavailable:
            return 503, {"status": "unavailable", "database": "unreachable"}
        return 200, {
            "status": "ok",
            "database": "ok",
            "open_requests": open_requests,
            "outbox_pending": outbox.get("pending", 0) + outbox.get("sending", 0),
            "outbox_failed": outbox.get("failed", 0),
        }

    async def healthz(_request: Request) -> JSONResponse:
        status, body = await run_in_threadpool(health)
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
