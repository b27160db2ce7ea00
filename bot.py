"""rapidreview: the composition root and the command line.

settings -> database -> services -> platform adapters -> scheduler. Nothing is built at import
time; tests call build() with their own clock and clients.
"""

from __future__ import annotations

import gc
import logging
import signal
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TextIO

try:
    from sqlalchemy.exc import OperationalError

    from cli import BadInput, command, parse_args, settings_command
    from reviews.clock import Clock, DatabaseClock, SystemClock
    from reviews.context import Services
    from reviews.health import Health
    from reviews.notify import Route
    from reviews.outbox import Sender
    from reviews.policy import PolicyError, load_policy
    from reviews.wards import WardsError, load_wards
    from sender_process import STANDBY, SenderProcess, ignore_stop_signals, is_sender
    from sender_process import command as sender_command
    from sender_process import serve as serve_sender
    from settings import (
        SHORT_RETENTION_DAYS,
        Settings,
        SettingsError,
        load_settings,
        log_format_of,
    )
    from storage.database import Database, DatabaseUnavailable
except ModuleNotFoundError as missing:  # a python without .venv's packages: say what to run
    import os
    import shlex
    from pathlib import Path

    top = (missing.name or "").split(".")[0]
    here = Path(__file__).resolve().parent
    if not top or (here / top).is_dir() or (here / f"{top}.py").exists():
        raise  # one of our own modules: a defect, not a missing install

    from handlers.logs import refusal_line  # the standard library's alone

    typed = shlex.join(["./scripts/run", *sys.argv[1:]])
    print(
        refusal_line(
            f"{missing.name} is not installed for {sys.executable}: run {typed} (it makes .venv "
            "and installs the project into it), or .venv/bin/python bot.py with the same "
            "arguments once it has",
            os.environ.get("LOG_FORMAT", "").strip().lower(),
        ),
        file=sys.stderr,
    )
    sys.exit(2)

log = logging.getLogger("rapidreview")

ZERO = timedelta(0)
# With a RETENTION_DAYS under SHORT_RETENTION_DAYS (warned of at start: 9 may be a typo for
# 90), the daily retention job first runs this long after a start, so that the bot can be
# stopped before anything is erased: an erasure cannot be undone. Every other job, and
# retention with a longer value, runs at once (a bot restarted more often than this would
# otherwise never erase).
RETENTION_FIRST_AFTER = timedelta(minutes=10)


@dataclass
class Bot:
    settings: Settings
    services: Services
    senders: dict[str, Sender]
    slack_app: Any = None
    slack_client: Any = None
    teams: Any = None  # handlers.teams.TeamsAdapter when Teams is configured
    http_app: Any = None
    scheduler: Any = None
    shell_terminal: Any = None  # handlers.shell.Terminal when the shell is the platform
    form_relay: Any = None  # handlers.slack.form_relay.FormRelay when Slack listens


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    slack_client: Any = None,
    teams_options: dict[str, Any] | None = None,
    shell_output: TextIO | None = None,
    health: Health | None = None,
    listening: bool = True,
) -> Bot:
    """Wire the bot for `settings`; without `listening` (a command-line command), only what
    sends and looks people up: no bolt App and no HTTP app. PolicyError or WardsError if the
    escalation policy or the wards file is malformed."""
    policy = load_policy(settings.escalation_policy)
    wards = load_wards(settings.wards_file)
    db = Database(settings.database_url)
    routes: list[Route] = []
    if settings.slack_configured:
        routes.append(Route("slack", settings.outreach_channel, settings.digest_channel))
    if settings.teams_configured:
        routes.append(
            Route("teams", settings.teams_outreach_conversation, settings.teams_digest_conversation)
        )
    terminal = None
    if not routes:
        from handlers.shell import SHELL_ROUTE, Terminal

        routes.append(SHELL_ROUTE)
        interactive = shell_output is None and sys.stdin.isatty() and sys.stdout.isatty()
        terminal = Terminal(shell_output or sys.stdout, threading.Lock(), interactive=interactive)
    from handlers.pager import text_senders

    text_by: dict[str, Sender] = text_senders(settings, settings.ca_bundle)
    if terminal is not None and "notify" not in text_by:
        from handlers.pager.shell import ShellTextSender

        # The trial has no Notify: its texts are printed where its chat is.
        text_by["notify"] = ShellTextSender(terminal)
    services = Services(
        db=db,
        # Replicas share PostgreSQL, so they share its clock; SQLite has one process.
        clock=clock or (SystemClock() if db.is_sqlite else DatabaseClock(db)),
        policy=policy,
        routes=tuple(routes),
        timezone=settings.timezone,
        fallback_contact=settings.fallback_contact,
        managers=settings.managers,
        rota_admins=settings.rota_admins,
        digest_time=settings.digest_time,
        checkin_time=settings.checkin_time,
        retention_days=settings.retention_days,
        texting=tuple(text_by),
        wards=wards,
        health=health or Health(),
    )
    bot = Bot(settings=settings, services=services, senders=dict(text_by), shell_terminal=terminal)
    http_routes: list[Any] = []
    if settings.slack_configured:
        from handlers.slack import AfterAck, SlackSender, build_slack_app, slack_routes

        bot.slack_client = slack_client or make_slack_client(settings)
        bot.senders["slack"] = SlackSender(bot.slack_client)
        if listening:
            from handlers.slack.form_relay import FormRelay

            after_ack, bot.form_relay = AfterAck(), FormRelay(services, bot.slack_client)
            bot.slack_app = build_slack_app(
                services, settings, bot.slack_client, after_ack, bot.form_relay
            )
            if not settings.slack_socket_mode:
                http_routes += slack_routes(bot.slack_app, after_ack)
    if settings.teams_configured:
        from handlers.teams import build_teams

        teams = build_teams(services, settings, **(teams_options or {}))
        bot.teams = teams
        bot.senders["teams"] = teams.sender
        http_routes += teams.routes
    if terminal is not None:
        from handlers.shell import ShellSender

        bot.senders["shell"] = ShellSender(terminal)
    if listening:
        bot.http_app = make_http(services, settings, http_routes)
    return bot


def make_http(services: Services, settings: Settings, platform_routes: list[Any]) -> Any:
    """The HTTP app of every mode: the platforms' routes, the public pages, /healthz and
    /metrics. Built even where nothing listens yet, so the shell can serve it when PORT is set."""
    from handlers.http import make_http_app
    from handlers.limits import BODY_LIMITS
    from handlers.metrics import metrics_route
    from handlers.web import body_limit, error_pages, web_routes

    public = body_limit(settings)
    limits = [limit for limit in BODY_LIMITS if limit.prefix != public.prefix] + [public]
    routes = [*platform_routes, *web_routes(services, settings), metrics_route(services)]
    return make_http_app(
        services.db, routes, limits, health=services.health, error_pages=error_pages(settings)
    )


def http_server(bot: Bot) -> Any:
    """A server for bot.http_app on HOST:PORT (handlers.http.HttpServer): `.run()` in the
    foreground, or `.start_in_thread()` beside a terminal chat; `.stop()` at the end."""
    from handlers.http import HttpServer

    settings = bot.settings
    return HttpServer(
        bot.http_app,
        settings.host,
        settings.port,
        settings.log_level,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def make_slack_client(settings: Settings) -> Any:
    from handlers.slack.client import PooledWebClient

    # A send must end well inside the outbox's lease, or another replica would send it again.
    options: dict[str, Any] = {
        "token": settings.slack_bot_token,
        "ssl": outbound_ssl_context(settings),  # file uploads still go through urllib
        "ca_bundle": settings.ca_bundle,
        "timeout": 10,
    }
    if settings.slack_api_url:
        options["base_url"] = settings.slack_api_url
    return PooledWebClient(**options)


def outbound_ssl_context(settings: Settings) -> ssl.SSLContext:
    """The system's trust store, or settings.ca_bundle (REQUESTS_CA_BUNDLE / SSL_CERT_FILE)."""
    return ssl.create_default_context(cafile=settings.ca_bundle or None)


def start_scheduler(
    bot: Bot,
    *,
    late_digest: bool = True,
    sender: SenderProcess | None = None,
    only: Sequence[str] | None = None,
    stopping: threading.Event | None = None,
) -> Any:
    """The ticks: every replica runs them all; the database decides who does the work.
    Without `late_digest` a digest or check-in prompt goes only at its time (the shell: a new
    trial database needs no catching up). Beside a `sender` process, the outbox drain is a
    standby (sender_process.py) and the sender is checked on each second; `only` runs just
    the ticks named (the sender process: "outbox"). Once `stopping` is set, a drain under way
    ends after the sends it has begun."""
    from apscheduler.events import EVENT_JOB_MAX_INSTANCES
    from apscheduler.schedulers.background import BackgroundScheduler

    from reviews import channels, checkin_prompt, digest, escalation, outbox, retention, rota_jobs

    services, senders, health = bot.services, bot.senders, bot.services.health

    def guarded(name: str, job: Any) -> Any:
        def run() -> None:
            health.started(name)
            try:
                job()
            except DatabaseUnavailable as error:
                # Logged once, not twice a second, until the job completes again.
                if health.failed(name):
                    log.warning("%s: database unavailable (%s); will retry", name, error)
                return
            except Exception:
                if health.failed(name):
                    log.exception("%s failed; will retry", name)
                return
            health.completed(name)

        return run

    scheduler = BackgroundScheduler(
        timezone=bot.settings.timezone, job_defaults={"coalesce": True, "max_instances": 1}
    )
    # max_instances=1 skips a tick while the last one still runs: a hung job shows as stale
    # in /healthz, and is logged once, not once per skipped tick.
    scheduler.add_listener(lambda event: health.job_skipped(event.job_id), EVENT_JOB_MAX_INSTANCES)

    def drain() -> None:
        if sender is None:
            outbox.drain(services, senders, told_to_stop=stopping)
        else:
            sender.covered(outbox.drain(services, senders, standby=STANDBY, told_to_stop=stopping))

    ticks = [
        ("sweep", lambda: escalation.sweep(services), 0.5),
        ("outbox", drain, 0.25),
        ("platforms", lambda: outbox.check_platforms(services, senders), 60.0),
        ("channels", lambda: channels.check_channels(services, senders), 30.0),
        ("handovers", lambda: rota_jobs.announce_handovers(services), 60.0),
        ("cover-gaps", lambda: rota_jobs.warn_cover_gaps(services), 60.0),
        ("digest", lambda: digest.digest_job(services, send_late=late_digest), 30.0),
        (
            "checkin-prompt",
            lambda: checkin_prompt.prompt_job(services, send_late=late_digest),
            30.0,
        ),
        ("retention", lambda: retention.retention_job(services), 300.0),
    ]
    if sender is not None:
        ticks.append(("sender-process", sender.check, 1.0))
    if only is not None:
        ticks = [tick for tick in ticks if tick[0] in only]
    for watched in ("sweep", "outbox"):
        if only is None or watched in only:
            health.watch(watched)
    started = datetime.now(bot.settings.timezone)
    short = bot.settings.retention_days < SHORT_RETENTION_DAYS
    first_retention = RETENTION_FIRST_AFTER if short else ZERO
    for name, job, seconds in ticks:
        scheduler.add_job(
            guarded(name, job),
            "interval",
            seconds=seconds,
            id=name,
            next_run_time=started + (first_retention if name == "retention" else ZERO),
        )
    scheduler.start()
    bot.scheduler = scheduler
    return scheduler


def stop_scheduler(bot: Bot, stopping: threading.Event) -> None:
    """Stop the ticks and wait for those under way: a drain hands back the messages it has
    not begun, for the next copy of the bot, and ends once the sends it has begun are
    recorded. A job left running would meet the interpreter's exit half-way (a drain could no
    longer start a send) and its messages would wait out their lease."""
    stopping.set()
    if bot.scheduler is not None:
        bot.scheduler.shutdown(wait=True)


def quiet_scheduler_logs() -> None:
    """APScheduler logs every job run at INFO (a dozen lines a second) and warns of every
    skipped tick; its other warnings stay. A job that keeps ticks waiting is told once by
    reviews.health (and shows as stale in /healthz)."""
    scheduler_logs = logging.getLogger("apscheduler")
    scheduler_logs.setLevel(max(logging.WARNING, scheduler_logs.getEffectiveLevel()))
    logging.getLogger("apscheduler.scheduler").addFilter(
        lambda record: "maximum number of running instances" not in str(record.msg)
    )


def run(bot: Bot) -> None:
    """Run the bot in the mode its settings choose (CONTRACT.md "Run modes")."""
    from handlers.pager import announce
    from reviews.outbox import hand_back, recover

    settings = bot.settings
    announce(settings, bot.services.policy, log)
    for platform, setting in unwatched_alarms(settings):
        log.warning(
            "%s is not set: no daily digest on %s; cover gaps and failed messages are reported "
            "in the outreach channel",
            setting,
            platform,
        )
    say_wards_without_a_phone(bot)
    say_a_time_zone_without_summer_time(bot.settings)
    say_a_short_retention(bot.settings)
    # Only the bot itself, never a shell or a command sharing its SQLite file, takes back what
    # a killed predecessor had claimed: a running bot may be sending those rows right now.
    try:
        recover(bot.services)
    except DatabaseUnavailable as error:
        log.warning("outbox recovery skipped: database unavailable (%s)", error)
    sender = None
    if settings.sender_process and not bot.services.db.is_sqlite:
        health = bot.services.health
        relay = bot.form_relay
        sender = SenderProcess(
            sender_command(),
            on_warning=lambda warning: health.notice("sender", warning),
            on_lost=relay.lost if relay is not None else lambda _lines: None,
            on_dead=lambda drainer: hand_back(bot.services, drainer),
        )
        sender.start()
        health.describe("sender_process", lambda: sender.state if sender else "stopped")
        health.checks.append(lambda: sender.hung(health.stale_after) if sender else None)
        if relay is not None:
            relay.hand_over = sender.hand_over  # /rapidreview's forms open there
    stopping = threading.Event()
    start_scheduler(bot, sender=sender, stopping=stopping)
    # What start-up leaves (modules, the tables' metadata, the policy) lives as long as the
    # process. Frozen, once its garbage is collected, the collector no longer walks it: a full
    # collection took 64 ms of the one interpreter lock, and every answer in flight waited.
    gc.collect()
    gc.freeze()
    # uvicorn stops gracefully on SIGTERM and then raises it again, and by default that ended
    # the process before the lines below could tell the sender to stop.
    signal.signal(signal.SIGTERM, stop_cleanly)
    server = None
    try:
        if settings.serves_http:
            server = http_server(bot)
        if settings.slack_socket_mode:
            if server is not None:
                server.start_in_thread()
            socket_mode(bot)
        elif server is not None:
            log.info("serving HTTP on %s:%s", settings.host, settings.port)
            server.run()
    finally:
        if server is not None:
            server.stop()
        stop_scheduler(bot, stopping)
        if sender is not None:
            sender.stop()


def cannot_listen(host: str, port: int) -> str | None:
    """Why the bot could not listen on HOST:PORT, naming the settings; None if it can. Before
    anything starts: uvicorn said only "[Errno 98] address already in use" and exited 3."""
    import socket

    try:
        for family, kind, proto, _, address in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        ):
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
    except OSError as error:
        why = error.strerror or type(error).__name__
        return (
            f"PORT / HOST: cannot listen on {host}:{port} ({why}): another program (or another "
            "copy of the bot) may be using the port, or HOST is not an address of this machine. "
            "Set PORT to a free port, or HOST to this machine's address (0.0.0.0: all of them)."
        )
    return None


def unwatched_alarms(settings: Settings) -> list[tuple[str, str]]:
    """The configured platforms with no digest channel: (platform, its setting)."""
    unset = []
    if settings.slack_configured and not settings.digest_channel:
        unset.append(("Slack", "DIGEST_CHANNEL"))
    if settings.teams_configured and not settings.teams_digest_conversation:
        unset.append(("Teams", "TEAMS_DIGEST_CONVERSATION"))
    return unset


def say_a_time_zone_without_summer_time(settings: Settings) -> None:
    """TIMEZONE=GMT (or UTC) is valid, and an hour out for every UK rota time all summer: a
    July 08:00 shift began at 09:00, and the bleep holder was not called until then."""
    zone = settings.timezone
    winter, summer = (datetime(2026, month, 1, tzinfo=zone).utcoffset() for month in (1, 7))
    if winter == summer and winter == timedelta(0):
        log.warning(
            "TIMEZONE=%s has no summer time: every rota time and time shown would be an hour "
            "out in British Summer Time. For wards in the UK, set TIMEZONE=Europe/London.",
            zone.key,
        )


def say_a_short_retention(settings: Settings) -> None:
    """RETENTION_DAYS=9 (a typo for 90) is a valid choice a trust may make, and erases patient
    identifiers at the next daily job: under SHORT_RETENTION_DAYS it is said at start."""
    days = settings.retention_days
    if days < SHORT_RETENTION_DAYS:
        log.warning(
            "RETENTION_DAYS=%d: patient identifiers and free text of requests closed (and "
            "check-ins recorded) more than %d days ago will be erased at the daily retention "
            "job (first %g minutes from now if it has not run today, else just after "
            "midnight); if that is a typo, stop the bot and set RETENTION_DAYS=90",
            days,
            days,
            RETENTION_FIRST_AFTER.total_seconds() / 60,
        )


def say_wards_without_a_phone(bot: Bot) -> None:
    """The public pages give each ward's phone line, else CONCERN_PHONE; a ward with neither
    gets pages that can only tell people to ask ward staff to call the team: said at start."""
    if bot.settings.concern_phone:
        return
    bare = [ward.code for ward in bot.services.wards if not ward.phone]
    if bare:
        log.warning(
            "CONCERN_PHONE is not set, and these wards have no phone of their own: %s. Their "
            "public pages give no phone line, only 'ask any member of staff to call the "
            "outreach team'. Set CONCERN_PHONE to the trust's 24/7 Martha's Rule line.",
            ", ".join(bare),
        )


def stop_cleanly(_signal: int, _frame: Any) -> None:
    """SIGTERM: leave through run()'s `finally`, and exit 0 once it is done."""
    raise SystemExit(0)


def run_sender(bot: Bot) -> int:
    """`python bot.py sender`: the outbox drain, and the forms its bot hands over to open
    (handlers/slack/form_relay.py), for the bot that started it (sender_process.py); an exit
    code."""
    from apscheduler.events import EVENT_JOB_EXECUTED

    if bot.services.db.is_sqlite:
        return refuse(
            "a sender process is for PostgreSQL only", bot.settings.log_format, process="sender"
        )

    stopping = threading.Event()
    forms = None
    if bot.slack_client is not None:
        from handlers.slack.form_relay import FormOpener

        forms = FormOpener(bot.services, bot.slack_client)

    def start(beat: Any) -> Any:
        scheduler = start_scheduler(bot, only=("outbox",), stopping=stopping)
        # After each drain, whether it sent, failed or found nothing: the bot hears it lives.
        scheduler.add_listener(lambda _event: beat(), EVENT_JOB_EXECUTED)
        gc.collect()
        gc.freeze()
        return scheduler

    return serve_sender(
        start, stopping, on_line=forms, stop_lines=forms.stop if forms else lambda: None
    )


def socket_mode(bot: Bot, *, retry_every: float = 30.0) -> None:
    """Slack over Socket Mode until the process stops. Slack down, or a refused app token, at
    start is said once and retried: it must not stop Teams or the escalation sweep."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk.errors import SlackClientError

    # The bot's own client: the App's holds no token (handlers.slack.app.tokenless).
    handler = SocketModeHandler(
        bot.slack_app, bot.settings.slack_app_token, web_client=bot.slack_client
    )
    told = False
    while True:
        try:
            handler.connect()
            break
        except (SlackClientError, OSError) as error:
            if not told:
                log.error(
                    "Slack Socket Mode cannot connect (%s); everything else carries on; "
                    "trying again every %.0f s",
                    type(error).__name__,
                    retry_every,
                )
                told = True
            time.sleep(retry_every)
    log.info("Slack over Socket Mode")
    threading.Event().wait()


def live_platforms(bot: Bot) -> list[str]:
    """The chat platforms this database has held messages for: it is a live bot's, whose
    settings are missing here. (Not texts and pages: the shell's own trial sends those.)"""
    with bot.services.db.reading() as uow:
        return sorted(uow.outbox.platforms() & {"slack", "teams"})


def not_the_shells(platforms: list[str]) -> str:
    return (
        f"DATABASE_URL is a live bot's database (it holds messages for {', '.join(platforms)}), "
        "but no Slack or Teams settings are set here. The shell would take over its open "
        "requests' escalation, into this terminal. Set the bot's settings (its .env), or point "
        "DATABASE_URL at a database of the shell's own."
    )


def run_shell(bot: Bot, *, announce: bool = False, moved: str | None = None) -> None:
    """The local shell until the person quits; the scheduler runs behind it. `moved` says why
    the shell is not on the configured database, if it is not."""
    from handlers.pager.shell import give_keyboard_user_a_phone
    from handlers.shell import SHELL_USER, Shell, take_free_roles, where

    terminal = bot.shell_terminal
    if announce:
        terminal.say(
            "No Slack or Teams is configured, so this is the local shell: the same bot at your "
            "keyboard.\nTo connect Slack (SLACK_BOT_TOKEN) or Teams (TEAMS_APP_ID), see "
            "README.md."
        )
    terminal.say(moved or f"Database: {where(bot.settings)}")
    terminal.say(take_free_roles(bot.services))
    give_keyboard_user_a_phone(bot.services, SHELL_USER.user_id)
    # Background work speaks above the prompt, not into the middle of what is being typed.
    shell_log = TerminalLog(terminal)
    logging.getLogger().handlers[:] = [shell_log]
    say_a_short_retention(bot.settings)  # the shell erases too, on the same delay
    # Ctrl-C must reach the main thread, which waits in readline: a signal taken by a
    # background thread would leave readline waiting for another key. Threads inherit the
    # mask of the thread that starts them, so they all start with SIGINT blocked.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    stopping = threading.Event()
    try:
        start_scheduler(bot, late_digest=False, stopping=stopping)
        server = serve_public_pages(bot) if bot.settings.port_given else None
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # At the keyboard, the person is the trial's rota admin too: cover any role.
    services = replace(bot.services, rota_admins=bot.services.rota_admins | {SHELL_USER.user_id})
    try:
        Shell(services, terminal).loop()
    finally:
        if server is not None:
            server.stop()
        stop_scheduler(bot, stopping)


def serve_public_pages(bot: Bot) -> Any:
    """The public pages beside the shell, so a family's request can be tried in a browser;
    None (and a line saying why) if the port is taken."""
    server = http_server(bot)
    server.start_in_thread()
    deadline = time.monotonic() + 10
    while not server.server.started and server.thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    port = bot.settings.port
    if not server.server.started:
        bot.shell_terminal.say(f"The public pages could not be served on port {port} (in use?).")
        server.stop()
        return None
    bot.shell_terminal.say(f"A family's request form: http://localhost:{port}/concern")
    return server


class TerminalLog(logging.Handler):
    def __init__(self, terminal: Any):
        super().__init__()
        self.terminal = terminal
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.terminal.background(self.format(record))


# Libraries whose DEBUG logs carry request bodies (a call-back number in a direct message, a
# form's contents). Patient identifiers never go into logs, so these stay at INFO whatever
# LOG_LEVEL says. (bolt's own logger is held at WARNING by handlers.slack.app.)
WIRE_LOGGERS = {
    "slack_sdk": logging.INFO,
    # Its own level, not just its parent's: slack_sdk tests this logger's own level (NOTSET
    # passes) before formatting every call's whole body for a debug line that is then dropped
    # (about 40 us a request form, more for a card).
    # CRITICAL: it also logs an ERROR for every call that fails, and while Slack is down that
    # was a line for every message, beside the one the outbox writes itself for each attempt
    # (and the one line the scheduler writes for the outage).
    "slack_sdk.web.base_client": logging.CRITICAL,
    # At INFO its retries quote the whole response_url, which lets its holder answer the nurse;
    # its ERROR for a failed answer repeats the line the command logs itself.
    "slack_sdk.webhook.client": logging.CRITICAL,
    "msal": logging.INFO,
    "urllib3": logging.INFO,
    "requests": logging.INFO,
    # Its WARNING for a failed call quotes Notify's whole answer; the outbox logs each failure
    # itself, with Notify's error type and message and any number in it removed.
    "notifications_python_client": logging.ERROR,
}


def quiet_wire_loggers() -> None:
    for name, floor in WIRE_LOGGERS.items():
        logger = logging.getLogger(name)
        logger.setLevel(max(floor, logger.getEffectiveLevel()))


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sending = is_sender(argv)
    if sending:
        ignore_stop_signals()
    process = "sender" if sending else None
    try:
        args = parse_args([] if sending else argv)
    except BadInput as error:
        # Before the settings are read: LOG_FORMAT alone says how to refuse.
        return refuse(str(error), log_format_of(), process=process)
    # The Teams package needs TEAMS_APP_ID only: the rest of Teams may not be set up yet.
    package_only = args.command == "teams"
    try:
        settings = load_settings(complete=not package_only)
    except SettingsError as error:
        return refuse(str(error), log_format_of(), process=process)
    from handlers.logs import configure

    configure(settings.log_level, settings.log_format, process=process)
    # Migrations at every start are routine; their chatter would bury a command's one line.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    quiet_wire_loggers()
    quiet_scheduler_logs()
    if args.command not in (None, "shell"):
        # A command's output is its answer; the log adds only problems.
        logging.getLogger().setLevel(max(logging.WARNING, logging.getLogger().level))
    if package_only:
        try:
            return settings_command(args, settings)
        except BadInput as error:
            return refuse(str(error), settings.log_format)
    configured = settings.slack_configured or settings.teams_configured
    shell = args.command == "shell" or (args.command is None and not configured)
    moved = None
    if shell:
        from handlers.shell import trial_settings

        settings, moved = trial_settings(settings)
    try:
        bot = build(settings, listening=not sending and (shell or args.command is None))
        if sending:
            # Its bot brought the tables up to date; a sender started later by an older bot
            # (new code on disk) must not move them under it.
            return run_sender(bot)
        from storage.migrate import upgrade  # Alembic: 11 MB a sender process need not hold

        upgrade(bot.services.db.engine)
        if args.command == "db":
            print("Database schema is up to date.")
            return 0
        if shell:
            if moved is None and (live := live_platforms(bot)):
                return refuse(not_the_shells(live), settings.log_format)
            # The terminal is the chat: only problems are logged into it.
            logging.getLogger().setLevel(max(logging.WARNING, logging.getLogger().level))
            run_shell(bot, announce=args.command is None, moved=moved)
            return 0
        if args.command is None:
            if settings.serves_http and (taken := cannot_listen(settings.host, settings.port)):
                return refuse(taken, settings.log_format)
            run(bot)
            return 0
        return command(args, bot)
    except (PolicyError, WardsError, BadInput) as error:
        return refuse(str(error), settings.log_format, process=process)
    except (OperationalError, DatabaseUnavailable) as error:
        return refuse(
            unreachable(error, settings.database_url), settings.log_format, process=process
        )


def refuse(message: str, log_format: str, *, process: str | None = None) -> int:
    """Says on stderr, in one line of LOG_FORMAT, why the bot will not start or a command will
    not run; the exit status for bad input (2)."""
    from handlers.logs import refusal_line

    print(refusal_line(message, log_format, process=process), file=sys.stderr)
    return 2


def unreachable(error: Exception, url: str) -> str:
    """One line: which database did not answer and why, never its password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    cause = getattr(error, "orig", None) or error.__cause__ or error
    cause = getattr(cause, "orig", None) or cause  # DatabaseUnavailable wraps SQLAlchemy's
    reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    if parsed.password:
        reason = reason.replace(str(parsed.password), "***")
    if parsed.get_backend_name() == "sqlite":
        where = parsed.database or "memory"
    elif url.count("@") > 1:
        # A password holding an '@' not written %40: the host, or the database name, as read
        # holds the rest of it.
        return (
            "DATABASE_URL: cannot reach the database: its address holds more than one '@' "
            "(write an '@' in the password as %40)"
        )
    else:
        where = f"{parsed.host}:{parsed.port or 5432}/{parsed.database}"
    return f"DATABASE_URL: cannot reach the database at {where} ({reason})"


if __name__ == "__main__":
    sys.exit(main())
