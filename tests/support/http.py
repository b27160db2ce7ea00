"""Serving a Starlette app over real HTTP on an ephemeral loopback port, for one test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette

from handlers.http import HttpServer


@contextmanager
def serve(app: Starlette, **options: Any) -> Iterator[str]:
    """The app on 127.0.0.1 at a free port (HttpServer `options`); yields its base URL."""
    server = HttpServer(app, "127.0.0.1", 0, "warning", **options)
    server.start_in_thread()
    deadline = time.monotonic() + 10
    while not server.server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test HTTP server did not start")
        time.sleep(0.01)
    port = server.server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
