"""Latency over real HTTP: rapidreview beside a bare slack_bolt app on the same stack.

    .venv/bin/python bench/http_latency.py [--db sqlite,postgres] [--clients 1,10,50]
                                           [--count 1000] [--kinds command,submit,press]
                                           [--rate REQUESTS_A_SECOND]

For each database, starts `python bot.py` (Slack over HTTP, a fake Slack Web API in its own
process) and, in the same run, a bare slack_bolt App on the same Starlette + uvicorn stack
whose listeners only ack (its start-up objects frozen out of the garbage collector's way, as the
bot's are). Then, at each number of concurrent clients (each with a keep-alive
connection), POSTs `--count` signed requests of each kind to both, after a few untimed ones
(WARM_UP): `/rapidreview` commands, request-form submissions and Acknowledge presses on open
requests, once the bot's outbox is empty. Prints p50/p99/max, requests a second, the bot's CPU
per request (and, on PostgreSQL, its sender process's; and the fake Slack's, which real Slack
spends elsewhere) and the ratio of our p99
to the bare app's; how many submissions were answered NOT CONFIRMED (the safety figure: it must
be 0); and, for commands, when the form reached Slack (views.open) after the command was sent:
what the nurse waits for, since a slash command's own answer is empty. For commands, a third
app in the same run, bare bolt whose command listener acks and then opens the same request form
(`bolt+form`), is the like-for-like control: bare bolt only acks, ours must open a form, and the
ratio to bolt+form is what our own code adds. No asserts.

With `--rate`, requests fall due at that many a second, whatever the answers (an open loop),
sent from `--clients` connections, and each latency counts from when its request fell due. With
a fixed number of clients each sending its next request on the last one's answer (a closed
loop, the default), the clients keep the machine busy whatever each request costs, so the
latency mostly reads how much CPU a request costs all the processes on the machine (the bot,
its sender, the fake Slack, the clients). At a rate the machine keeps up with, it reads how long
a request waits for its own answer.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from sqlmodel import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import speed  # noqa: E402
from handlers.slack.blocks import ACTION_PREFIX  # noqa: E402
from handlers.slack.forms import REQUEST_FORM  # noqa: E402
from reviews import service  # noqa: E402
from reviews.clock import SystemClock  # noqa: E402
from reviews.model import State  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.tables import Review  # noqa: E402
from tests.support.builders import NURSE, OUTREACH, make_services, on_rota, request  # noqa: E402
from tests.support.databases import drop_template, postgres_database, sqlite_database  # noqa: E402
from tests.support.process import free_port, sender_of, slack_environment  # noqa: E402
from tests.support.slack_requests import (  # noqa: E402
    SIGNING_SECRET,
    SlackRequest,
    button_click,
    request_form,
    slash_command,
    view_submission,
)

ALEX = "U01ALEX"
KINDS = ("command", "submit", "press")


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


def serve_fake_slack(pipe: multiprocessing.connection.Connection) -> None:
    """The fake Slack in its own process, so it takes no CPU from the clients measuring. Asked
    ("opened", prefix), it answers {trigger_id: when views.open arrived} for those triggers;
    "stop" ends it."""
    from tests.support.timed_slack import TimedSlack

    # The fake keeps every call it was sent (tens of thousands in a run), and its collector
    # walked them all in each full collection: pauses of 150-250 ms in which views.open waited,
    # counted as the bot's (a command's p99 at 10 clients 162 ms, and its form's 252 ms, against
    # 28 and 19 ms with the fake's collector off). Real Slack does not pause for us. What
    # survives a full collection is frozen out of the next one's way.
    gc.callbacks.append(_freeze_survivors)
    with TimedSlack() as fake:
        fake.add_user(ALEX, "Alex Carter", "alex.carter@nhs.net")
        pipe.send(fake.url)
        while (asked := pipe.recv()) != "stop":
            _, prefix = asked
            pipe.send(
                {
                    str(call.body.get("trigger_id")): arrived
                    for arrived, call in list(fake.arrivals)
                    if call.method == "views.open"
                    and str(call.body.get("trigger_id", "")).startswith(prefix)
                }
            )


def serve_bare(port: int, slack_url: str, form: bool = False) -> None:
    """The control: bolt + Starlette + uvicorn, listeners that only ack. With `form`, the
    command's listener then opens the same request form as ours, as a bolt app is written
    (`client.views_open` on the client bolt hands it): the like-for-like control for commands."""
    import gc
    import re

    import uvicorn
    from slack_bolt import App
    from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
    from slack_sdk import WebClient
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.routing import Route

    # The same client as ours: bolt checks its token once (auth.test) against the fake.
    app = App(
        client=WebClient(token="xoxb-bare", base_url=slack_url), signing_secret=SIGNING_SECRET
    )
    if form:
        from handlers.slack.forms import request_view

        view = request_view(("Ward 7", "Ward 9", "Ward 3"))

        def command(ack, body, client):
            ack()
            client.views_open(trigger_id=body["trigger_id"], view=view)

        app.command("/rapidreview")(command)
    else:
        app.command("/rapidreview")(lambda ack: ack())
    app.view(REQUEST_FORM)(lambda ack: ack())
    app.action(re.compile(f"^{ACTION_PREFIX}"))(lambda ack: ack())

    async def events(request):
        body = await request.body()
        response = await run_in_threadpool(app.dispatch, to_bolt_request(request, body))
        return to_starlette_response(response)

    starlette = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
    # As bot.py does before serving: otherwise a full collection (58 ms here) lands in some of
    # bare bolt's runs and not others, and the ratio measures the collector's timing.
    gc.collect()
    gc.freeze()
    # h11, as the bot's server uses: left to choose ("auto"), uvicorn takes httptools wherever it
    # is installed: bare bolt's commands at 50 clients then read p99 21-38 ms, against 36-47 ms
    # on h11 the same day, and the ratio would compare two stacks, not our code.
    uvicorn.run(
        starlette, host="127.0.0.1", port=port, log_level="warning", access_log=False, http="h11"
    )


@contextmanager
def bare_app(slack_url: str, form: bool = False) -> Iterator[tuple[str, int]]:
    port = free_port()
    serve = f"{port},{int(form)},{slack_url}"
    process = subprocess.Popen([sys.executable, __file__, "--serve-bare", serve], cwd=ROOT)
    try:
        wait_listening(port)
        yield f"http://127.0.0.1:{port}/slack/events", process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def our_bot(url: str, slack_url: str) -> Iterator[tuple[str, int]]:
    """`python bot.py`, its log to a file: a pipe read by this busy process would fill, and
    the bot's log writes would wait for it (an artefact no real log collector has)."""
    port = free_port()
    env = slack_environment(
        slack_url,
        url,
        DIGEST_CHANNEL="C0DIGEST",
        PORT=str(port),
        LOG_LEVEL="INFO",
    )
    with tempfile.TemporaryFile() as log:
        bot = subprocess.Popen(
            [sys.executable, "bot.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_listening(port, timeout=60)
            yield f"http://127.0.0.1:{port}/slack/events", bot.pid
        finally:
            bot.terminate()
            bot.wait(timeout=30)


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of `pid` so far (Linux /proc); 0 for no process."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    latencies: list[float]
    seconds: float
    cpu: float
    sender_cpu: float  # the bot's sender process's, where it has one
    slack_cpu: float  # the fake Slack's: on this machine here, at Slack in production
    client_cpu: float  # this process's, the clients': Slack's servers, in production
    not_confirmed: int
    errors: int
    answered: dict[int, float]  # request number -> when its answer came (epoch seconds)
    sent: dict[int, float]  # request number -> when it was sent (epoch seconds)

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def load(
    url: str,
    pids: tuple[int, int],
    make: Callable[[int], SlackRequest],
    count: int,
    clients: int,
    rate: float | None = None,
) -> Figures:
    """`count` requests from `clients` threads, each on one keep-alive connection; `pids` are
    the server's and the fake Slack's, whose CPU is counted. With `rate`, the requests are due
    at that many a second (an open loop): a request is sent when it falls due, by the first
    client free, and its latency counts from when it fell due, so a wait for a free client
    counts too.

    Every request is built and signed before the clock starts, and sent with the standard
    library's http.client: the clients share this process's two cores with the servers, and a
    heavier client (requests) made every figure, bare bolt's too, mostly the client's own cost.
    """
    latencies: list[float] = []
    answered: dict[int, float] = {}
    sent: dict[int, float] = {}
    tally = {"not_confirmed": 0, "errors": 0}
    prepared = [make(number) for number in range(count)]
    numbers = iter(range(count))
    lock = threading.Lock()
    address = urlsplit(url)

    def client() -> None:
        connection = http.client.HTTPConnection(
            address.hostname or "127.0.0.1", address.port, timeout=30
        )
        try:
            while True:
                with lock:
                    number = next(numbers, None)
                if number is None:
                    return
                slack_request = prepared[number]
                due = began_all + number / rate if rate else 0.0
                if rate:
                    time.sleep(max(0.0, due - time.perf_counter()))
                sent[number] = time.time()
                began = due if rate else time.perf_counter()
                connection.request(
                    "POST", address.path, slack_request.body.encode(), slack_request.headers
                )
                response = connection.getresponse()
                text = response.read()
                took = time.perf_counter() - began
                with lock:
                    answered[number] = time.time()
                    latencies.append(took)
                    tally["errors"] += response.status != 200
                    tally["not_confirmed"] += b"NOT CONFIRMED" in text
        finally:
            connection.close()

    pid, slack_pid = pids
    sender = sender_of(pid)
    cpu_before, began = cpu_seconds(pid), time.perf_counter()
    sender_before, slack_before = cpu_seconds(sender), cpu_seconds(slack_pid)
    clients_before = cpu_seconds(os.getpid())
    began_all = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Figures(
        latencies,
        time.perf_counter() - began,
        cpu_seconds(pid) - cpu_before,
        cpu_seconds(sender) - sender_before,
        cpu_seconds(slack_pid) - slack_before,
        cpu_seconds(os.getpid()) - clients_before,
        tally["not_confirmed"],
        tally["errors"],
        answered,
        sent,
    )


def requests_for(kind: str, run: str, review_ids: list[int]) -> Callable[[int], SlackRequest]:
    if kind == "command":
        return lambda n: slash_command(trigger_id=f"trigger-{run}-{n}")
    if kind == "submit":
        form = request_form()
        return lambda n: view_submission(
            REQUEST_FORM, form, user_id=NURSE.user_id, view_id=f"V{run}x{n}"
        )
    return lambda n: button_click(
        f"{ACTION_PREFIX}acknowledge", str(review_ids[n]), user_id=ALEX, user_name="alex"
    )


def open_reviews(db: Database, count: int) -> list[int]:
    ward = make_services(db, SystemClock())
    return [
        service.raise_review(services=ward, request=request(), by=NURSE).review.id or 0
        for _ in range(count)
    ]


def acknowledge_all(db: Database) -> None:
    """Acknowledge every open request (the submissions' thousand), as the team would: left
    open, their ladders' next levels fell due minutes later, in the middle of a later kind's
    run, and the bot's sending them was measured as that kind's latency."""
    ward = make_services(db, SystemClock())
    with db.reading() as uow:
        waiting = uow.session.exec(select(Review.id).where(Review.state == State.RAISED)).all()
    for review_id in waiting:
        service.acknowledge(services=ward, review_id=review_id or 0, by=OUTREACH)


def settle(db: Database, timeout: float = 300) -> None:
    """Wait until the bot has sent everything it owes, so that neither app is measured while
    the bot is still sending the messages of the previous kind or of the requests just opened
    for the presses (1,000 cards and direct messages, which took it several seconds)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        with db.reading() as uow:
            owed = uow.outbox.count_by_state()
        if not owed.get("pending", 0) + owed.get("sending", 0):
            break
        time.sleep(0.2)
    print(f"  (the bot's outbox took {time.monotonic() - began:.1f} s to empty first)")


def state_lag(db: Database, review_ids: list[int], answered: dict[int, float]) -> str:
    """A press is answered first and recorded after: how long after its answer each
    acknowledgement was in the database (until then the sweep could still escalate)."""
    deadline = time.monotonic() + 120
    while True:
        with db.reading() as uow:
            stamps = {n: uow.reviews.get(review_id) for n, review_id in enumerate(review_ids)}
        times = {n: r.acknowledged_at for n, r in stamps.items() if r and r.acknowledged_at}
        if len(times) == len(review_ids) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    lags = sorted(
        times[n].replace(tzinfo=times[n].tzinfo or UTC).timestamp() - answered[n]
        for n in times
        if n in answered
    )
    return spread("recorded after the answer", lags, len(review_ids))


def forms_shown(slack: multiprocessing.connection.Connection, run: str, figures: Figures) -> str:
    """How long after each command was sent its form reached Slack (views.open)."""
    time.sleep(1.0)  # the last forms are opened after their commands' answers
    slack.send(("opened", f"trigger-{run}-"))
    arrived: dict[str, float] = slack.recv()
    waits = sorted(
        arrived[f"trigger-{run}-{n}"] - sent
        for n, sent in figures.sent.items()
        if f"trigger-{run}-{n}" in arrived
    )
    return spread("form reached Slack after the command", waits, len(figures.sent))


def spread(what: str, seconds: list[float], out_of: int) -> str:
    """p50 / p99 / max of `seconds` (sorted) in ms, and how many of `out_of` were seen."""
    if not seconds:
        return f"  {what}: none"
    at = lambda p: seconds[min(len(seconds) - 1, int(len(seconds) * p))] * 1000  # noqa: E731
    return (
        f"  {what}: p50 {at(0.5):7.1f}  p99 {at(0.99):7.1f}  "
        f"max {seconds[-1] * 1000:7.1f} ms  ({len(seconds)} of {out_of})"
    )


def ratio(figures: Figures, control: Figures) -> str:
    return f"{figures.pct(0.99) / control.pct(0.99):5.1f}x"


def row(name: str, figures: Figures, bare: Figures | None) -> str:
    against = ratio(figures, bare) if bare else ""
    count = len(figures.latencies)
    return (
        f"  {name:9} p50 {figures.pct(0.5) * 1000:7.1f}  p99 {figures.pct(0.99) * 1000:7.1f}  "
        f"max {max(figures.latencies) * 1000:7.1f} ms  {count / figures.seconds:6.1f} req/s"
        f"  cpu {figures.cpu / count * 1000:5.1f} ms/req"
        + (
            f" (its sender's {figures.sender_cpu / count * 1000:3.1f})"
            if figures.sender_cpu
            else ""
        )
        + f" (Slack's {figures.slack_cpu / count * 1000:3.1f},"
        f" the clients' {figures.client_cpu / count * 1000:3.1f})"
        f"  errors {figures.errors}  {against}"
    )


# Untimed requests sent at each concurrency before the timed ones, this many per client: the
# first requests at a new concurrency start threads and open connections (to Slack, and the
# database's pool growing) that later ones reuse for the process's life, and a p99 of a
# thousand at 10 clients is the 10th slowest. (A submission's p99 at 10 clients once read
# 465 ms against a p50 of 108; how much of that was this, and how much the fake Slack's
# collector, below, was not measured apart.)
WARM_UP = 2


def run(
    url: str,
    clients: list[int],
    count: int,
    slack: tuple[str, int, multiprocessing.connection.Connection],
    kinds: list[str],
    rate: float | None = None,
) -> None:
    slack_url, slack_pid, slack_pipe = slack
    db = Database(url)
    on_rota(db, "outreach", "Alex Carter", ALEX, datetime.now(UTC) - timedelta(hours=1))
    with (
        our_bot(url, slack_url) as (ours, our_pid),
        bare_app(slack_url) as (bare, bare_pid),
        bare_app(slack_url, form=True) as (formed, formed_pid),
    ):
        for number, concurrent in enumerate(clients):
            paced = f"{rate:g} a second (open loop) from {concurrent} connections" if rate else ""
            print(
                f" {paced or f'{concurrent} concurrent'}, {count} requests each  "
                f"(load {os.getloadavg()[0]:.1f})"
            )
            for kind in kinds:
                warm = WARM_UP * concurrent
                review_ids = open_reviews(db, count + warm) if kind == "press" else []
                apps = [(bare, bare_pid, "b"), (ours, our_pid, "o")]
                if kind == "command":
                    apps.append((formed, formed_pid, "f"))
                for app, pid, name in apps:
                    # Presses on requests of their own (bare bolt's change nothing).
                    warming = requests_for(kind, f"{name}{number}w", review_ids[count:])
                    load(app, (pid, slack_pid), warming, warm, concurrent)
                settle(db)
                control = load(
                    bare,
                    (bare_pid, slack_pid),
                    requests_for(kind, f"b{number}", review_ids),
                    count,
                    concurrent,
                    rate,
                )
                figures = load(
                    ours,
                    (our_pid, slack_pid),
                    requests_for(kind, f"o{number}", review_ids),
                    count,
                    concurrent,
                    rate,
                )
                print(row("bare", control, None))
                print(row(kind, figures, control))
                if kind == "command":
                    # The same work as ours in bare bolt: ack, then open the form.
                    like = load(
                        formed,
                        (formed_pid, slack_pid),
                        requests_for(kind, f"f{number}", review_ids),
                        count,
                        concurrent,
                        rate,
                    )
                    print(row("bolt+form", like, control))
                    print(f"  ours beside bare bolt opening the same form: {ratio(figures, like)}")
                if kind == "submit":
                    print(f"  submissions answered NOT CONFIRMED: {figures.not_confirmed}")
                    acknowledge_all(db)
                if kind == "press":
                    print(state_lag(db, review_ids[:count], figures.answered))
                if kind == "command":
                    print(forms_shown(slack_pipe, f"o{number}", figures))
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--clients", default="1,10,50")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--kinds", default=",".join(KINDS), help="command,submit,press")
    parser.add_argument(
        "--rate",
        type=float,
        help="requests a second, due on a fixed schedule (an open loop); --clients is then "
        "how many connections send them",
    )
    parser.add_argument("--serve-bare", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        port, form, slack_url = args.serve_bare.split(",", 2)
        serve_bare(int(port), slack_url, form=form == "1")
        return
    clients = [int(c) for c in args.clients.split(",")]
    print(
        f"{speed()}; latencies as the client sees them, after {WARM_UP} untimed requests "
        "per client at each concurrency"
    )
    ours, theirs = multiprocessing.Pipe()
    slack = multiprocessing.Process(target=serve_fake_slack, args=(theirs,), daemon=True)
    slack.start()
    slack_url = ours.recv()
    try:
        for name in args.db.split(","):
            with ExitStack() as stack:
                if name == "postgres":
                    url = stack.enter_context(postgres_database())
                    stack.callback(drop_template)
                else:
                    workdir = stack.enter_context(tempfile.TemporaryDirectory())
                    url = stack.enter_context(sqlite_database(workdir))
                print(f"database: {name}")
                fake = (slack_url, slack.pid or 0, ours)
                run(url, clients, args.count, fake, args.kinds.split(","), args.rate)
    finally:
        ours.send("stop")
        slack.join(timeout=10)


if __name__ == "__main__":
    main()
