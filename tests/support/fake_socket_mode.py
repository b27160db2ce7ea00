"""A fake of Slack's Socket Mode WebSocket: the bot connects to it (apps.connections.open on the
fake Slack gives its ws:// address), is greeted with "hello", and is sent envelopes (a slash
command, a button press, a form submitted) as Slack sends them; what the bot acknowledges each
envelope with is recorded.

Only what Socket Mode uses of RFC 6455: the opening handshake, unfragmented text frames,
ping/pong and close. slack_sdk's client speaks plain ws:// to a port other than 443.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import socket
import struct
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

from tests.support.slack_requests import SlackRequest

HANDSHAKE_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class FakeSocketMode:
    """The WebSocket end of Socket Mode on 127.0.0.1; `url` is what apps.connections.open
    answers."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self._listener.getsockname()[1]}/link"
        self._connections: list[socket.socket] = []
        self._send_lock = threading.Lock()
        self._acks: dict[str, dict[str, Any]] = {}
        self._seen = threading.Condition()
        self._ids = itertools.count(1)
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, daemon=True, name="fake-socket")

    def __enter__(self) -> FakeSocketMode:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopping = True
        self._listener.close()
        for connection in list(self._connections):
            connection.close()

    def wait_connected(self, timeout: float = 30) -> None:
        """Until the bot has connected and been greeted."""
        deadline = time.monotonic() + timeout
        with self._seen:
            while not self._connections:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the bot never connected over Socket Mode")
                self._seen.wait(left)

    def send(self, kind: str, request: SlackRequest, timeout: float = 10) -> dict[str, Any]:
        """Deliver `request` (built as for HTTP) as a Socket Mode envelope of `kind`
        (slash_commands, interactive, events_api); the bot's acknowledgement of it."""
        fields = dict(parse_qsl(request.body, keep_blank_values=True))
        if kind == "events_api":
            payload: dict[str, Any] = json.loads(request.body)
        elif "payload" in fields:
            payload = json.loads(fields["payload"])
        else:
            payload = fields
        envelope_id = f"env-{next(self._ids)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": 0,
            "retry_reason": "",
        }
        self._frame(self._connections[-1], TEXT, json.dumps(envelope).encode())
        deadline = time.monotonic() + timeout
        with self._seen:
            while envelope_id not in self._acks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the bot never acknowledged {kind} {envelope_id}")
                self._seen.wait(left)
            return self._acks[envelope_id]

    def _accept(self) -> None:
        while not self._stopping:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            self._handshake(connection)
            hello = {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0"}}
            self._frame(connection, TEXT, json.dumps(hello).encode())
            with self._seen:
                self._connections.append(connection)
                self._seen.notify_all()
            while True:
                opcode, data = _read_frame(connection)
                if opcode == PING:
                    self._frame(connection, PONG, data)
                elif opcode == CLOSE:
                    self._frame(connection, CLOSE, data[:2])
                    return
                elif opcode == TEXT:
                    said = json.loads(data)
                    with self._seen:
                        self._acks[said.get("envelope_id", "")] = said
                        self._seen.notify_all()
        except (OSError, ConnectionError, ValueError):
            return
        finally:
            connection.close()

    def _handshake(self, connection: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = connection.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            request += chunk
        headers = dict(
            line.split(": ", 1) for line in request.decode().split("\r\n")[1:] if ": " in line
        )
        key = {k.lower(): v for k, v in headers.items()}["sec-websocket-key"].strip()
        # RFC 6455 fixes SHA-1 for the handshake; it proves nothing secret.
        digest = hashlib.sha1((key + HANDSHAKE_GUID).encode(), usedforsecurity=False).digest()
        accept = base64.b64encode(digest)
        connection.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )

    def _frame(self, connection: socket.socket, opcode: int, data: bytes) -> None:
        """One unmasked (server-to-client) frame."""
        size = len(data)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, size)
        elif size < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
        with self._send_lock:
            connection.sendall(header + data)


def _read_exactly(connection: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _read_frame(connection: socket.socket) -> tuple[int, bytes]:
    """One client frame (always masked, never fragmented by slack_sdk): opcode and payload."""
    first, second = _read_exactly(connection, 2)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", _read_exactly(connection, 2))
    elif size == 127:
        (size,) = struct.unpack("!Q", _read_exactly(connection, 8))
    mask = _read_exactly(connection, 4) if second & 0x80 else b"\0\0\0\0"
    data = _read_exactly(connection, size)
    return first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))
