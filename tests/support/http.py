"""Serving a Starlette app over real HTTP on an ephemeral loopback port, for one test."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette

from handlers.http import HttpServer


class PromptServer(uvicorn.Server):
    """The bot's uvicorn server (the same config), quick to stop. uvicorn looks at
    `should_exit` every 0.1 s, and once stopping waits a fixed 0.1 s before it looks for open
    connections: 0.15 s on average after every test that serves, hundreds of them a run. Here
    it looks every 10 ms, and waits for open connections and tasks as uvicorn does (each asked
    to close, then until it has), only no longer than they take."""

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):  # 10 ticks a second: its date header
            counter = (counter + 1) % 864000
            for _ in range(10):
                if self.should_exit:
                    break
                await asyncio.sleep(0.01)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        while self.server_state.connections or self.server_state.tasks:
            await asyncio.sleep(0.01)
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()


def _handed_work(thread: threading.Thread) -> bool:
    """Whether `thread` runs work a request handed off (handlers/one_at_a_time.py)."""
    target = getattr(thread, "_target", None)  # threading's own; gone once the thread ends
    return getattr(target, "__module__", "") == "handlers.one_at_a_time"


@contextmanager
def serve(app: Starlette, **options: Any) -> Iterator[str]:
    """The app on 127.0.0.1 at a free port (HttpServer `options`); yields its base URL. Once
    it has stopped, the work its requests handed to threads of their own
    (handlers/one_at_a_time.py) has up to 0.5 s to end: such a thread may still be handing
    back its database connection after its request was answered, and the test disposes of
    the database next (uvicorn's own 0.1-0.2 s on stopping hid that; a connection handed
    back to a disposed pool is never closed, and pytest fails whichever test is running when
    it is collected)."""
    before = set(threading.enumerate())
    server = HttpServer(app, "127.0.0.1", 0, "warning", **options)
    server.server = PromptServer(server.server.config)
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
        deadline = time.monotonic() + 0.5
        for thread in set(threading.enumerate()) - before:
            if _handed_work(thread):
                thread.join(max(0.0, deadline - time.monotonic()))
