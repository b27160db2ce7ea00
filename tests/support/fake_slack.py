"""A fake Slack Web API on an ephemeral loopback port: answers like Slack, records every call.

Point a real `slack_sdk.WebClient(base_url=fake.url)` at it (or a separate bot process via
SLACK_API_URL=fake.url). Each call is recorded with its method and parsed body; a test can make
a method fail N times with a 5xx, a 429 with Retry-After, or a Slack API error; or take effect
and then lose its answer (`lands=True`: a 5xx, or with status 0 the connection closed
unanswered, after `hold` seconds), as when Slack posted a message whose answer never came back.
Posted messages are kept per conversation, with their metadata, for conversations.history and
conversations.replies. A channel in `outside` is one the bot was never invited to (or was removed
from): Slack refuses to post or read there (not_in_channel), and conversations.info says the bot
is no member, until `invite`.

    with FakeSlack() as fake:
        fake.fail("chat.postMessage", times=2, status=429, retry_after=7)
        ...
        fake.wait_for("views.open")

Left alone it answers in about a millisecond; real Slack takes 100-300 ms a call. `latency`
(seconds) holds every answer that long, and `slow` holds the calls to one channel (or user)
longer: `FakeSlack(latency=0.15, slow={"C0BUSY": 1.0})`. A call takes effect (is recorded, so a
test or a benchmark sees it arrive) at the end of its wait, as a message shows in Slack only
once Slack has handled it. Calls are answered side by side, as Slack answers them.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlparse

BOT_ID = "B0BOT"  # the bot the fake's token belongs to: its posts carry it
# Fields slack_sdk sends JSON-encoded inside form bodies.
JSON_FIELDS = ("blocks", "attachments", "view", "files")


# Seconds between the server's looks at whether it is asked to stop: http.server's default of
# 0.5 made every test using the fake wait a quarter of a second, on average, to end.
POLL = 0.02


@dataclass
class Call:
    method: str  # "chat.postMessage", or "response_url" / "upload" for those endpoints
    body: dict[str, Any]
    headers: dict[str, str]
    answer: dict[str, Any] = field(default_factory=dict)  # what the fake said back
    connection: tuple[str, int] = ("", 0)  # the caller's address and port: one per connection
    path: str = ""  # the URL's path: which response_url, for "response_url"
    answered: threading.Event = field(default_factory=threading.Event)  # set once it was sent


@dataclass
class Failure:
    times: int
    status: int
    retry_after: int | None = None
    error: str | None = None
    channel: str | None = None  # only calls to this channel (or user) fail
    lands: bool = False  # the call takes effect; only its answer fails (status 0: none at all)
    hold: float = 0.0  # seconds between taking effect and the failed answer
    page: str | None = None  # answered as this text/html body instead (a proxy's error page)
    said: dict[str, Any] | None = None  # answered as this JSON instead (Slack's {}: no "ok")


@dataclass
class FakeSlack:
    """The fake server. `users` maps user id -> {"name", "real_name", "email"}."""

    users: dict[str, dict[str, str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    latency: float = 0.0  # seconds before every answer
    slow: dict[str, float] = field(default_factory=dict)  # channel -> seconds, instead
    # conversation id -> its messages as Slack keeps them (thread replies carry thread_ts)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    outside: set[str] = field(default_factory=set)  # channels the bot is not a member of
    # The app's scopes, as auth.test's x-oauth-scopes header gives them (None: no header).
    scopes: list[str] | None = None
    # Where apps.connections.open sends a Socket Mode client (tests/support/fake_socket_mode.py).
    socket_url: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._ts = itertools.count(1)
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL},
            daemon=True,
            name="fake-slack",
        )
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/api/"
        self.root = f"http://127.0.0.1:{self._server.server_address[1]}/"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def add_user(self, user_id: str, name: str, email: str = "") -> None:
        self.users[user_id] = {
            "name": name.lower().replace(" ", "."),
            "real_name": name,
            "email": email,
        }

    def fail(
        self,
        method: str,
        *,
        times: int = 1,
        status: int = 500,
        retry_after: int | None = None,
        error: str | None = None,
        channel: str | None = None,
        lands: bool = False,
        hold: float = 0.0,
        page: str | None = None,
        said: dict[str, Any] | None = None,
    ) -> None:
        """The next `times` calls of `method` fail: HTTP `status` (200 with `error` = API error);
        with `channel`, only calls to that channel (the bot sends to several at once). With
        `lands`, each takes effect first and only its answer fails, `hold` seconds later
        (status 0: the connection is closed with no answer). With `page`, the answer is that
        HTML with `status`, as a corporate proxy answers in Slack's place. With `said`, that
        JSON with `status`, not Slack's usual shape (an empty {})."""
        with self._lock:
            self.failures.setdefault(method, []).append(
                Failure(times, status, retry_after, error, channel, lands, hold, page, said)
            )

    def invite(self, channel: str) -> None:
        """Someone invites the bot to `channel`: it may post and read there from now on."""
        with self._lock:
            self.outside.discard(channel)

    def response_url(self, name: str = "r1") -> str:
        """A response_url for a payload; what is posted to it is recorded as "response_url"."""
        return f"{self.root}response/{name}"

    def called(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """The calls of `method` once there are at least `count` of them; AssertionError after
        `timeout` seconds (listeners finish on bolt's threads after the ack)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len([c for c in self.calls if c.method == method]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c.method for c in self.calls]
                    raise AssertionError(f"expected {count} {method} call(s); saw {seen}")
                self._lock.wait(left)
            return [c for c in self.calls if c.method == method]

    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
            self._lock.notify_all()

    def take_failure(self, method: str, body: dict[str, Any] | None = None) -> Failure | None:
        """The failure to answer this call with, if any (`body` for fakes that limit rates)."""
        with self._lock:
            queue = self.failures.get(method) or []
            channel = str((body or {}).get("channel", ""))
            for failure in queue:
                if failure.channel in (None, channel):
                    failure.times -= 1
                    if failure.times <= 0:
                        queue.remove(failure)
                    return failure
            return None

    def latency_for(self, body: dict[str, Any]) -> float:
        """Seconds this call waits before it is handled and answered."""
        return self.slow.get(str(body.get("channel", "")), self.latency)

    def next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """What Slack would say to `method` with `body`."""
        with self._lock:
            outside = str(body.get("channel", "")) in self.outside
        if outside and method in MEMBERS_ONLY:
            return {"ok": False, "error": "not_in_channel"}
        refused = refusal(method, body)
        if refused is not None:
            return refused
        handler = ANSWERS.get(method)
        return handler(self, body) if handler else {"ok": True}


def _post_message(fake: FakeSlack, body: dict[str, Any]) -> dict[str, Any]:
    channel = str(body.get("channel", ""))
    if channel[:1] in ("U", "W"):
        channel = "D" + channel[1:]  # Slack posts to the app's DM with that user
    ts = fake.next_ts()
    message = {"type": "message", "text": body.get("text", ""), "ts": ts, "bot_id": BOT_ID}
    kept = dict(message)
    if body.get("thread_ts"):
        kept["thread_ts"] = str(body["thread_ts"])
    if isinstance(body.get("metadata"), dict):
        kept["metadata"] = body["metadata"]
    with fake._lock:
        fake.messages.setdefault(channel, []).append(kept)
    return {"ok": True, "channel": channel, "ts": ts, "message": message}


def _shown(message: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """`message` as history shows it: its metadata only when asked for."""
    if str(body.get("include_all_metadata", "")).lower() in ("1", "true"):
        return message
    return {name: value for name, value in message.items() if name != "metadata"}


def _history(fake: FakeSlack, body: dict[str, Any]) -> dict[str, Any]:
    """The conversation's messages (not thread replies), newest first, up to `limit`."""
    with fake._lock:
        kept = list(fake.messages.get(str(body.get("channel", "")), []))
    top = [m for m in kept if m.get("thread_ts") in (None, m["ts"])]
    limit = int(body.get("limit") or 100)
    return {"ok": True, "messages": [_shown(m, body) for m in reversed(top)][:limit]}


def _replies(fake: FakeSlack, body: dict[str, Any]) -> dict[str, Any]:
    """A thread: its parent, then its replies, oldest first, `limit` a page (the cursor is
    where the next page starts)."""
    parent = str(body.get("ts", ""))
    with fake._lock:
        kept = list(fake.messages.get(str(body.get("channel", "")), []))
    thread = [m for m in kept if m["ts"] == parent or m.get("thread_ts") == parent]
    if not thread:
        return {"ok": False, "error": "thread_not_found"}
    start, limit = int(body.get("cursor") or 0), int(body.get("limit") or 1000)
    more = start + limit < len(thread)
    return {
        "ok": True,
        "messages": [_shown(m, body) for m in thread[start : start + limit]],
        "has_more": more,
        "response_metadata": {"next_cursor": str(start + limit) if more else ""},
    }


def _update(fake: FakeSlack, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "ok": True,
        "channel": body.get("channel"),
        "ts": body.get("ts"),
        "text": body.get("text", ""),
    }


def _view(fake: FakeSlack, body: dict[str, Any]) -> dict[str, Any]:
    view = dict(body.get("view") or {})
    view["id"] = body.get("view_id") or f"V{fake.next_ts().replace('.', '')}"
    return {"ok": True, "view": view}


def _user(fake: FakeSlack, user_id: str) -> dict[str, Any]:
    known = fake.users[user_id]
    return {
        "id": user_id,
        "name": known["name"],
        "real_name": known["real_name"],
        "profile": {
            "email": known["email"],
            "real_name": known["real_name"],
            "display_name": known["real_name"],
        },
    }


def _users_info(fake: FakeSlack, body: dict[str, Any]) -> dict[str, Any]:
    user_id = str(body.get("user", ""))
    if user_id not in fake.users:
        return {"ok": False, "error": "user_not_found"}
    return {"ok": True, "user": _user(fake, user_id)}


def _lookup_by_email(fake: FakeSlack, body: dict[str, Any]) -> dict[str, Any]:
    email = str(body.get("email", "")).lower()
    for user_id, known in fake.users.items():
        if known["email"].lower() == email:
            return {"ok": True, "user": _user(fake, user_id)}
    return {"ok": False, "error": "users_not_found"}


def _upload_url(fake: FakeSlack, body: dict[str, Any]) -> dict[str, Any]:
    file_id = f"F{fake.next_ts().replace('.', '')}"
    return {"ok": True, "upload_url": f"{fake.root}upload/{file_id}", "file_id": file_id}


def _complete_upload(fake: FakeSlack, body: dict[str, Any]) -> dict[str, Any]:
    files = body.get("files") or []
    return {"ok": True, "files": [{"id": f.get("id"), "title": f.get("title", "")} for f in files]}


def _conversation_info(fake: FakeSlack, body: dict[str, Any]) -> dict[str, Any]:
    """A public channel, as conversations.info describes it: is_member says whether the bot
    is in it (any channel id is taken for one that exists)."""
    channel = str(body.get("channel", ""))
    with fake._lock:
        member = channel not in fake.outside
    return {
        "ok": True,
        "channel": {
            "id": channel,
            "is_channel": True,
            "is_private": False,
            "is_archived": False,
            "is_member": member,
        },
    }


def _open_conversation(fake: FakeSlack, body: dict[str, Any]) -> dict[str, Any]:
    users = str(body.get("users", ""))
    return {"ok": True, "channel": {"id": "D" + users.split(",")[0][1:]}}


ANSWERS: dict[str, Any] = {
    "auth.test": lambda fake, body: {
        "ok": True,
        "url": "https://fake.slack.com/",
        "team": "Trust",
        "user": "rapidreview",
        "team_id": "T0TRUST",
        "user_id": "U0BOT",
        "bot_id": BOT_ID,
    },
    "chat.postMessage": _post_message,
    "chat.postEphemeral": lambda fake, body: {"ok": True, "message_ts": fake.next_ts()},
    "chat.update": _update,
    "views.open": _view,
    "views.update": _view,
    "views.publish": _view,
    "views.push": _view,
    "conversations.info": _conversation_info,
    "conversations.open": _open_conversation,
    "conversations.history": _history,
    "conversations.replies": _replies,
    "users.info": _users_info,
    "users.lookupByEmail": _lookup_by_email,
    "files.getUploadURLExternal": _upload_url,
    "files.completeUploadExternal": _complete_upload,
    "response_url": lambda fake, body: {"ok": True},
    "apps.connections.open": lambda fake, body: (
        {"ok": True, "url": fake.socket_url}
        if fake.socket_url
        else {"ok": False, "error": "not_allowed_token_type"}
    ),
}


# Block Kit's documented limits, which Slack enforces by refusing the whole message or view
# (https://docs.slack.dev/reference/block-kit/blocks, .../composition-objects,
# .../block-elements; chat.postMessage: "invalid_blocks"; views.open: "invalid_arguments" with
# the reasons in response_metadata.messages). Slack never shortens a block to fit.
MESSAGE_BLOCKS, VIEW_BLOCKS = 50, 100
TEXT_TYPES = ("mrkdwn", "plain_text")
TEXT_MOST = 3000  # any text object; less where a limit below says so
LIMITS = {
    "header": 150,
    "section": 3000,
    "field": 2000,
    "fields": 10,
    "context": 10,  # elements
    "actions": 25,  # elements
    "button": 75,  # a button's text
    "button_value": 2000,
    "option": 75,  # an option's text
    "option_value": 150,
    "select_options": 100,
    "radio_options": 10,
    "id": 255,  # block_id, action_id, callback_id
    "label": 2000,
    "placeholder": 150,
    "view_title": 24,  # a modal's title, submit and close
    "private_metadata": 3000,
}
# A message's blocks together: undocumented, but Slack refuses a message whose blocks hold more
# than about 12,000 characters of text (msg_blocks_too_long), each within its own limits
# (https://github.com/slackapi/bolt-js/issues/2509, where Slack's staff give the figure, and
# /issues/2867, refused at 11,341). The fake refuses at 12,000.
BLOCKS_TEXT = 12000
POSTS = ("chat.postMessage", "chat.update", "chat.postEphemeral")
VIEWS = ("views.open", "views.update", "views.publish", "views.push")


def refusal(method: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """Slack's refusal of a message or a view that breaks Block Kit's limits; None if fine."""
    if method in POSTS:
        blocks = body.get("blocks")
        if not blocks and not str(body.get("text") or "").strip():
            return {"ok": False, "error": "no_text"}
        problems = _blocks_problems(blocks or [], MESSAGE_BLOCKS)
        if problems:
            return {"ok": False, "error": "invalid_blocks", "errors": problems}
        if method != "chat.postEphemeral" and len(shown({"blocks": blocks})) > BLOCKS_TEXT:
            return {"ok": False, "error": "msg_blocks_too_long"}
    if method in VIEWS:
        view = body.get("view") or {}
        problems = _blocks_problems(view.get("blocks") or [], VIEW_BLOCKS)
        for name in ("title", "submit", "close"):
            if name in view:
                problems += _text_problems(view[name], f"view.{name}", LIMITS["view_title"])
        if len(str(view.get("private_metadata") or "")) > LIMITS["private_metadata"]:
            problems.append("private_metadata: must be at most 3000 characters")
        if problems:
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]},
            }
    return None


def shown(body: dict[str, Any]) -> str:
    """What a person reads of a message posted with `body`: Slack shows its blocks when it has
    any, and its top-level text only in notifications (and alone when there are no blocks)."""
    blocks = body.get("blocks")
    if not blocks:
        return str(body.get("text") or "")
    parts = []
    for block in blocks:
        texts = [block.get("text") or {}, *(block.get("fields") or [])]
        texts += [e for e in block.get("elements") or [] if e.get("type") in TEXT_TYPES]
        parts += [str(t["text"]) for t in texts if isinstance(t.get("text"), str)]
    return "\n".join(parts)


def _text_problems(text: Any, where: str, most: int = TEXT_MOST) -> list[str]:
    said = text.get("text") if isinstance(text, dict) else None
    if not isinstance(said, str) or not said:
        return [f"{where}: must be a text object with at least 1 character"]
    if len(said) > most:
        return [f"{where}: must be at most {most} characters, not {len(said)}"]
    return []


def _blocks_problems(blocks: list[dict[str, Any]], most: int) -> list[str]:
    problems = [f"no more than {most} items allowed"] if len(blocks) > most else []
    for index, block in enumerate(blocks):
        where = f"blocks[{index}]"
        kind = block.get("type")
        if len(str(block.get("block_id", ""))) > LIMITS["id"]:
            problems.append(f"{where}.block_id: must be at most 255 characters")
        if kind == "header":
            problems += _text_problems(block.get("text"), f"{where}.text", LIMITS["header"])
        elif kind == "section":
            fields = block.get("fields") or []
            if "text" in block or not fields:
                problems += _text_problems(block.get("text"), f"{where}.text", LIMITS["section"])
            if len(fields) > LIMITS["fields"]:
                problems.append(f"{where}.fields: no more than 10 items allowed")
            for n, item in enumerate(fields):
                problems += _text_problems(item, f"{where}.fields[{n}]", LIMITS["field"])
        elif kind == "context":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= LIMITS["context"]:
                problems.append(f"{where}.elements: 1 to 10 items allowed")
            for n, element in enumerate(elements):
                if element.get("type") in ("mrkdwn", "plain_text"):
                    problems += _text_problems(element, f"{where}.elements[{n}]")
        elif kind == "actions":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= LIMITS["actions"]:
                problems.append(f"{where}.elements: 1 to 25 items allowed")
            for n, element in enumerate(elements):
                problems += _element_problems(element, f"{where}.elements[{n}]")
        elif kind == "input":
            problems += _text_problems(block.get("label"), f"{where}.label", LIMITS["label"])
            if "hint" in block:
                problems += _text_problems(block["hint"], f"{where}.hint", LIMITS["label"])
            problems += _element_problems(block.get("element") or {}, f"{where}.element")
    return problems


def _element_problems(element: dict[str, Any], where: str) -> list[str]:
    problems = []
    kind = element.get("type")
    if len(str(element.get("action_id", ""))) > LIMITS["id"]:
        problems.append(f"{where}.action_id: must be at most 255 characters")
    if "placeholder" in element:
        problems += _text_problems(
            element["placeholder"], f"{where}.placeholder", LIMITS["placeholder"]
        )
    if kind == "button":
        problems += _text_problems(element.get("text"), f"{where}.text", LIMITS["button"])
        if len(str(element.get("value", ""))) > LIMITS["button_value"]:
            problems.append(f"{where}.value: must be at most 2000 characters")
    if kind == "plain_text_input" and not 0 < int(element.get("max_length", 3000)) <= 3000:
        problems.append(f"{where}.max_length: must be from 1 to 3000")
    if kind in ("static_select", "radio_buttons"):
        options = element.get("options") or []
        most = LIMITS["select_options" if kind == "static_select" else "radio_options"]
        if not 1 <= len(options) <= most:
            problems.append(f"{where}.options: 1 to {most} items allowed")
        chosen = [element["initial_option"]] if element.get("initial_option") else []
        for n, option in enumerate([*options, *chosen]):
            name = f"{where}.options[{n}]"
            problems += _text_problems(option.get("text"), f"{name}.text", LIMITS["option"])
            if not 0 < len(str(option.get("value", ""))) <= LIMITS["option_value"]:
                problems.append(f"{name}.value: must be 1 to 150 characters")
    return problems


# What Slack refuses in a channel the bot is not a member of (not_in_channel). An ephemeral
# message too: https://docs.slack.dev/reference/methods/chat.postEphemeral (errors:
# channel_not_found, not_in_channel), so the bot tells that person by direct message instead.
MEMBERS_ONLY = frozenset(
    {
        "chat.postMessage",
        "chat.postEphemeral",
        "chat.update",
        "conversations.history",
        "conversations.replies",
    }
)


def parse_body(raw: bytes, content_type: str, query: str) -> dict[str, Any]:
    body: dict[str, Any] = dict(parse_qsl(query))
    if raw and "json" in content_type:
        body.update(json.loads(raw))
    elif raw and "form" in content_type and raw.isascii():
        body.update(parse_qsl(raw.decode("ascii"), keep_blank_values=True))
    elif raw:
        body["_raw"] = raw
    for name in JSON_FIELDS:
        if isinstance(body.get(name), str):
            try:
                body[name] = json.loads(body[name])
            except json.JSONDecodeError:
                pass
    return body


class _Server(ThreadingHTTPServer):
    request_queue_size = 64  # many bot threads connecting at once must not wait to be accepted

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client closing its kept-alive connection (a bot stopping) is not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Slack: a client may reuse a connection
        # Headers and body go out in two writes; on a kept-alive connection Nagle's algorithm
        # holds the second until the client's delayed ACK, 40 ms a call that Slack never adds.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._handle()

        def do_POST(self) -> None:  # noqa: N802
            self._handle()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return  # quiet: tests read the recorded calls instead

        def _handle(self) -> None:
            url = urlparse(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = parse_body(raw, self.headers.get("Content-Type", ""), url.query)
            parts = url.path.strip("/").split("/")
            method = parts[1] if parts[0] == "api" and len(parts) > 1 else parts[0]
            if method == "response":
                method = "response_url"
            call = Call(
                method,
                body,
                dict(self.headers.items()),
                connection=self.client_address,
                path=url.path,
            )
            delay = fake.latency_for(body)
            if delay > 0:
                time.sleep(delay)  # on this request's own thread: other calls go on meanwhile
            failure = fake.take_failure(method, body)
            status, retry_after = 200, None
            if failure is not None and failure.lands:
                fake.answer(method, body)  # it happened; only the answer goes astray
                call.answer = {"ok": False, "error": "fake_failure"}
                fake.record(call)
                time.sleep(failure.hold)
                if failure.status == 0:
                    self.close_connection = True  # closed unanswered: the caller cannot know
                else:
                    self._send(failure.status, call.answer, retry_after=failure.retry_after)
                call.answered.set()
                return
            if failure is not None and failure.page is not None:
                call.answer = {"ok": False, "error": "page"}
                fake.record(call)
                self._send_text(failure.status, failure.page, "text/html; charset=utf-8")
                call.answered.set()
                return
            if failure is not None and failure.said is not None:
                call.answer = failure.said
                fake.record(call)
                self._send(failure.status, failure.said)
                call.answered.set()
                return
            if failure is not None and failure.error is None:
                status, retry_after = failure.status, failure.retry_after
                call.answer = {"ok": False, "error": "fake_failure"}
            elif failure is not None:
                call.answer = {"ok": False, "error": failure.error}
            elif method != "upload":
                call.answer = fake.answer(method, body)
            # Recorded before answering, so a test waiting for the call sees it at once.
            fake.record(call)
            if method == "upload" and failure is None:
                self._send_text(200, f"OK - {len(raw)}")
            else:
                scopes = fake.scopes if method == "auth.test" else None
                self._send(status, call.answer, retry_after=retry_after, scopes=scopes)
            call.answered.set()

        def _send(
            self,
            status: int,
            payload: dict[str, Any],
            retry_after: int | None = None,
            scopes: list[str] | None = None,
        ) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if retry_after is not None:
                self.send_header("Retry-After", str(retry_after))
            if scopes is not None:
                self.send_header("x-oauth-scopes", ",".join(scopes))
            self.end_headers()
            self.wfile.write(data)

        def _send_text(self, status: int, text: str, kind: str = "text/plain") -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
