"""A fake GOV.UK Notify API and a fake paging gateway on ephemeral loopback ports.

Both record every call (path, raw body, headers, when it arrived) and can be told to answer
the next N calls with an error status (and a Retry-After), or to take the text and lose its
answer (`lands=True`: a 5xx, or with status 0 a dropped connection, after Notify took it). The
fake Notify checks the bearer token as Notify does (HS256 with the key's secret, `iss` the
service id), so a wrong key is refused with 403 like the real one, and lists the texts it took
(GET /v2/notifications, newest first) as Notify does.

    with FakeNotify() as notify, FakePager() as pager:
        pager.fail(times=1, status=503)
        ...
        pager.wait_for(1)
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import jwt

from tests.support.fake_slack import POLL

# A Notify key of the right shape: KEYNAME-SERVICEID-SECRET. Made up; not a real service.
NOTIFY_SERVICE_ID = "5a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
NOTIFY_SECRET = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
NOTIFY_API_KEY = f"rapidreview_test-{NOTIFY_SERVICE_ID}-{NOTIFY_SECRET}"
NOTIFY_TEMPLATE_ID = "9c8b7a69-5847-4a36-9251-40f3e2d1c0b9"
PAGER_SECRET = "test-gateway-secret"


@dataclass
class Call:
    path: str
    raw: bytes
    headers: dict[str, str]
    arrived: float  # time.time(), to compare with due times in the database
    status: int  # what the fake answered; 0 when it dropped the connection instead
    method: str = "POST"

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.raw)


@dataclass
class _Failure:
    times: int
    status: int  # 0: the connection drops without an answer
    retry_after: int | None
    lands: bool  # taken all the same, before the answer is lost
    hold: float  # seconds before answering
    method: str  # the calls it answers: POST (sending) or GET (Notify's list)
    body: str | None  # sent as it is (a proxy's page, say) instead of Notify's JSON error

    def answer(self) -> tuple[int, dict | str, dict]:
        extra = {"Retry-After": str(self.retry_after)} if self.retry_after else {}
        kind = "RateLimitError" if self.status == 429 else "Error"
        if self.body is not None:
            return self.status, self.body, extra
        return self.status, {"errors": [{"error": kind, "message": "no"}]}, extra


@dataclass
class FakeService:
    """The server both fakes share; subclasses say what a good answer and a bad token are."""

    name = "fake"
    calls: list[Call] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": POLL}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def fail(
        self,
        *,
        times: int = 1,
        status: int = 500,
        retry_after: int | None = None,
        lands: bool = False,
        hold: float = 0,
        method: str = "POST",
        body: str | None = None,
    ) -> None:
        """The next `times` calls of `method` get `status` (after those already queued),
        `hold` seconds late, with `body` if given; with `lands`, each is taken all the same
        (Notify sent the text, then its answer was lost)."""
        self.failures.append(_Failure(times, status, retry_after, lands, hold, method, body))

    def delivered(self) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == "POST" and 200 <= c.status < 300]

    def wait_for(self, count: int, timeout: float = 10) -> list[Call]:
        """The first `count` delivered calls; AssertionError if they do not come in time."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.delivered()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: {len(self.delivered())} of {count} came")
                self._lock.wait(left)
        return self.delivered()[:count]

    def answer(
        self, path: str, raw: bytes, headers: dict[str, str]
    ) -> tuple[int, dict | str, dict]:
        """(status, JSON answer, extra headers) for one call."""
        refused = self.refuse(path, raw, headers)
        if refused:
            return refused, {"errors": [{"error": "AuthError", "message": "bad token"}]}, {}
        failure = self.failure("POST")
        if failure:
            if failure.lands:
                self.take(raw)
            return failure.answer()
        return 201, self.take(raw), {}

    def failure(self, method: str) -> _Failure | None:
        """The failure queued for this call of `method`, once its hold is over; or None."""
        with self._lock:
            failure = next((f for f in self.failures if f.method == method), None)
            if failure:
                failure.times -= 1
                if failure.times <= 0:
                    self.failures.remove(failure)
        if failure:
            time.sleep(failure.hold)
        return failure

    def take(self, raw: bytes) -> dict[str, Any]:
        """Accept what was sent; the answer for it."""
        return {"id": f"{self.name}-{next(self._ids)}"}

    def listing(self, query: dict[str, list[str]]) -> tuple[int, dict]:
        return 404, {"errors": [{"error": "NotFound", "message": "no such path"}]}

    def refuse(self, path: str, raw: bytes, headers: dict[str, str]) -> int:
        return 0

    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
            self._lock.notify_all()


@dataclass
class FakeNotify(FakeService):
    """GOV.UK Notify's POST /v2/notifications/sms and GET /v2/notifications; NOTIFY_BASE_URL =
    fake.url. `taken` is every text Notify holds (those whose answer was lost too), oldest
    first, as GET /v2/notifications shows them."""

    name = "notify"
    taken: list[dict[str, Any]] = field(default_factory=list)

    def refuse(self, path: str, raw: bytes, headers: dict[str, str]) -> int:
        if urlsplit(path).path not in ("/v2/notifications/sms", "/v2/notifications"):
            return 404
        token = headers.get("authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, NOTIFY_SECRET, algorithms=["HS256"])
        except jwt.PyJWTError:
            return 403
        return 0 if claims.get("iss") == NOTIFY_SERVICE_ID else 403

    def take(self, raw: bytes) -> dict[str, Any]:
        body = json.loads(raw)
        notification = {
            "id": str(uuid.uuid4()),
            "reference": body.get("reference"),
            "phone_number": body.get("phone_number"),
            "type": "sms",
            "status": "created",
            "body": (body.get("personalisation") or {}).get("message", ""),
        }
        with self._lock:
            self.taken.append(notification)
        return {"id": notification["id"], "reference": notification["reference"]}

    def listing(self, query: dict[str, list[str]]) -> tuple[int, dict]:
        """Notify's list: newest first, 250 a page, filtered by reference and template type."""
        with self._lock:
            found = [
                n
                for n in reversed(self.taken)
                if n["reference"] == query.get("reference", [n["reference"]])[0]
                and n["type"] in query.get("template_type", [n["type"]])
            ]
        older_than = query.get("older_than", [""])[0]
        if older_than:
            ids = [n["id"] for n in found]
            found = found[ids.index(older_than) + 1 :] if older_than in ids else []
        page = found[:250]
        links = {"current": f"{self.url}/v2/notifications"}
        if len(found) > 250:
            links["next"] = f"{self.url}/v2/notifications?older_than={page[-1]['id']}"
        return 200, {"notifications": page, "links": links}

    def texts(self) -> list[tuple[str, str]]:
        """(phone number, message) of every text Notify took: what phones received."""
        with self._lock:
            return [(n["phone_number"], n["body"]) for n in self.taken]

    def listed(self) -> list[Call]:
        """The calls that asked Notify for its list."""
        with self._lock:
            return [c for c in self.calls if c.method == "GET"]


@dataclass
class FakePager(FakeService):
    """The trust's paging gateway: PAGER_WEBHOOK_URL = fake.url + "/page"."""

    name = "pager"

    def pages(self) -> list[dict[str, Any]]:
        return [c.body for c in self.delivered()]


def texting_settings(notify: FakeNotify, pager: FakePager) -> dict[str, str]:
    """The bot's settings that send texts through `notify` and pages through `pager`."""
    return {
        "NOTIFY_API_KEY": NOTIFY_API_KEY,
        "NOTIFY_SMS_TEMPLATE_ID": NOTIFY_TEMPLATE_ID,
        "NOTIFY_BASE_URL": notify.url,
        "PAGER_WEBHOOK_URL": pager.url + "/page",
        "PAGER_WEBHOOK_SECRET": PAGER_SECRET,
    }


LEVEL = re.compile(r"\(escalation level (\d+)\)")  # none at the first level


def texts_arrived(notify: FakeNotify, pager: FakePager) -> list[tuple[str, str, int, float]]:
    """(to, reference, level, arrival) of each page the gateway and each text Notify took."""
    arrived = []
    for call in pager.delivered():
        arrived.append((call.body["to"], call.body["reference"], call.body["level"], call.arrived))
    for call in notify.delivered():
        level = int(next(iter(LEVEL.findall(call.body["personalisation"]["message"])), 0))
        reference = call.body["reference"].split(" ")[0]  # the request's, before the rows' tags
        arrived.append((call.body["phone_number"], reference, level, call.arrived))
    return arrived


def _handler_for(fake: FakeService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = fake.refuse(self.path, b"", headers)
            answer: dict | str = {"errors": [{"error": "AuthError", "message": "bad token"}]}
            extra: dict[str, str] = {}
            failure = None if status else fake.failure("GET")
            if failure:
                status, answer, extra = failure.answer()
            elif not status:
                status, answer = fake.listing(parse_qs(urlsplit(self.path).query))
            fake.record(Call(self.path, b"{}", headers, time.time(), status, "GET"))
            self._answer(status, answer, extra)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer, extra = fake.answer(self.path, raw, headers)
            # Recorded before answering, so a caller that has its answer finds the call here.
            fake.record(Call(self.path, raw, headers, time.time(), status))
            self._answer(status, answer, extra)

        def _answer(self, status: int, answer: dict | str, extra: dict[str, str]) -> None:
            if status == 0:  # the connection drops: no answer at all
                self.close_connection = True
                return
            raw = isinstance(answer, str)
            payload = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html" if raw else "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: Any) -> None:
            pass  # quiet: pytest shows failures, not every call

    return Handler
