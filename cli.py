"""The command line: each command a small function run against a built Bot.

Bad input raises BadInput, which bot.main prints as one line with exit status 2. The texts
given to argparse are what `--help` shows: they are written for the trust's operators.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, Protocol

from reviews.context import Services, operator
from reviews.outbox import Sender
from settings import Settings

CALLED_FROM = "RAPIDREVIEW_CALLED_FROM"  # set by ./scripts/run: the folder it was run in


class Bot(Protocol):
    """What the commands use of bot.Bot (declared here, so cli.py never imports bot.py)."""

    settings: Settings
    services: Services
    senders: dict[str, Sender]
    slack_client: Any
    teams: Any


class BadInput(Exception):
    """A command-line mistake: one line saying what is wrong, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """Bad input is BadInput, which bot.main prints as one line of LOG_FORMAT (exit status 2),
    as it does every refusal."""

    def error(self, message: str) -> NoReturn:
        raise BadInput(f"{message} (see {self.prog} --help)")


DESCRIPTION = """rapidreview: Martha's Rule rapid reviews in Slack and Microsoft Teams.

With no command it runs the bot: in Slack and/or Teams when they are configured, otherwise
the local shell, where you can try it at the keyboard. Settings come from the environment or
from the .env file beside bot.py (see README.md)."""
EPILOG = "Exit status: 0 done; 2 something to fix (one line says what)."
AUDIT_BY = "your name or email, recorded in the audit trail with your operating-system login"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line's arguments; BadInput for a mistake (--help still prints and exits)."""
    return make_parser().parse_args(argv)


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python bot.py",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(group: Any, name: str, summary: str, **options: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = group.add_parser(
            name, help=summary, description=summary[:1].upper() + summary[1:] + ".", **options
        )
        return parser

    add(commands, "shell", "try the bot at the keyboard: raise and answer requests yourself")
    rota = add(commands, "rota", "import, show or change the on-call rota").add_subparsers(
        dest="rota_command", required=True, metavar="import|show|cover|remove"
    )
    add(rota, "import", "import shifts from a CSV or .ics file (see docs/rota.md)").add_argument(
        "file", type=given_path, metavar="FILE", help="the rota file: .csv, or .ics from a "
        "rostering system; prints what was added, changed and rejected"
    )
    add(rota, "show", "who holds each role, and who is next").add_argument(
        "--at", default=None, metavar="TIME", help="another moment, local time, e.g. "
        "2026-12-01T20:00 (default: now)"
    )
    cover = add(rota, "cover", "put someone on a role from now until a time (a swap or cover)")
    cover.add_argument(
        "role", metavar="ROLE", help="the role as the escalation policy names it, e.g. outreach"
    )
    cover.add_argument(
        "person", metavar="PERSON", help="the covering person's email, name as on the rota, or "
        "Slack/Teams user id"
    )
    cover.add_argument(
        "--until", default=None, metavar="TIME", help="local time, e.g. 20:00 or "
        "2026-12-01T20:00 (default: the end of the current shift)"
    )
    cover.add_argument("--by", required=True, metavar="YOU", help=AUDIT_BY)
    remove = add(
        rota, "remove", "take someone off the rota from now (their shifts and cover are "
        "withdrawn, kept as history)"
    )
    remove.add_argument(
        "person", metavar="PERSON", help="their email, name as on the rota, or Slack/Teams user id"
    )
    remove.add_argument("--by", required=True, metavar="YOU", help=AUDIT_BY)
    digest = add(commands, "digest", "print (or post) the managers' daily digest")
    window = digest.add_mutually_exclusive_group()
    window.add_argument(
        "--date", default=None, metavar="YYYY-MM-DD", help="the day whose digest to show, "
        "e.g. 2026-12-01 (default: the last complete day, to DIGEST_TIME today or yesterday)"
    )
    window.add_argument(
        "--so-far", action="store_true", help="the requests since the last DIGEST_TIME, as "
        "they stand now"
    )
    digest.add_argument(
        "--post", action="store_true", help="also post it to the digest channel(s), unless "
        "that day's was posted already"
    )
    export = add(commands, "export", "write a month's requests (or check-ins) to a CSV file")
    export.add_argument("--month", required=True, metavar="YYYY-MM", help="the month, e.g. 2026-12")
    export.add_argument(
        "--out", type=given_path, default=None, metavar="FILE", help="the file to write (default: "
        "rapidreview-YYYY-MM.csv, or rapidreview-checkins-YYYY-MM.csv, in the current folder)"
    )
    export.add_argument(
        "--with-identifiers", action="store_true", help="add NHS and call-back numbers (the "
        "file's name says WITH-IDENTIFIERS; readable by you only; audited)"
    )
    export.add_argument(
        "--checkins", action="store_true", help="the month's daily check-ins (no identifiers)"
    )
    retention = add(
        commands, "retention", "count (or --apply: erase) patient details past RETENTION_DAYS "
        "(docs/checkins.md)"
    )
    retention.add_argument("--apply", action="store_true", help="erase them, not only count")
    add(
        add(commands, "db", "the database's tables").add_subparsers(
            dest="db_command", required=True, metavar="upgrade"
        ),
        "upgrade",
        "bring the tables up to date (the bot also does this at every start)",
    )
    teams = add(
        add(commands, "teams", "the Teams app package").add_subparsers(
            dest="teams_command", required=True, metavar="package"
        ),
        "package",
        "build the zip to upload to Teams (needs TEAMS_APP_ID only; see docs/teams.md)",
    )
    teams.add_argument(
        "--out", type=given_path, default="rapidreview-teams.zip", metavar="FILE",
        help="the zip to write (default: rapidreview-teams.zip)"
    )
    posters = add(commands, "posters", "printable A4 posters for the wards (PDF)")
    posters.add_argument(
        "--ward", default=None, metavar="CODE", help="only this ward's code, e.g. ward-7"
    )
    posters.add_argument(
        "--out", type=given_path, required=True, metavar="DIR", help="the folder to write them to "
        "(needs PUBLIC_URL and CONCERN_PHONE or each ward's phone)"
    )
    return parser


def command(args: argparse.Namespace, bot: Bot) -> int:
    """Run the parsed command; its exit status. BadInput for a mistake in what was asked."""
    name = " ".join(
        word for word in (args.command, getattr(args, f"{args.command}_command", None)) if word
    )
    run = COMMANDS.get(name)
    if run is None:
        raise BadInput(f"unknown command {name!r}; see python bot.py --help")
    return run(args, bot)


def rota_import(args: argparse.Namespace, bot: Bot) -> int:
    from rotas.importer import import_rota

    lookup_slack_id = None
    if bot.slack_client is not None:
        from handlers.slack import lookup_slack_id as slack_lookup

        lookup_slack_id = slack_lookup(bot.slack_client)
    report = import_rota(
        services=bot.services,
        path=args.file,
        lookup_slack_id=lookup_slack_id,
        lookup_teams_id=bot.teams.lookup_teams_id() if bot.teams is not None else None,
    )
    if report.ok:
        print("\n".join(report.lines()))
        return 0
    # A rejected file's problems are errors: stderr, as for every other mistake; with
    # LOG_FORMAT=json, one JSON line, as every refusal is (its lines in its message).
    from handlers.logs import refusal_line

    said = "\n".join(report.lines())
    json_line = bot.settings.log_format == "json"
    print(refusal_line(said, "json") if json_line else said, file=sys.stderr)
    return 2


def rota_show(args: argparse.Namespace, bot: Bot) -> int:
    from rotas.view import rota_lines

    at = parse_local(args.at, bot.settings) if args.at else bot.services.clock.now()
    print("\n".join(rota_lines(services=bot.services, at=at)))
    return 0


def rota_cover(args: argparse.Namespace, bot: Bot) -> int:
    from reviews.cover import record_cover
    from reviews.service import ServiceError

    platform, user_id = person_identity(args.person, bot)
    try:
        said = record_cover(
            services=bot.services,
            role=args.role,
            covering_platform=platform,
            covering_user_id=user_id,
            by=operator(args.by),
            until_text=args.until,
            say_until="--until",
        )
    except ServiceError as refused:
        raise BadInput(str(refused)) from None
    print(said)
    return 0


def rota_remove(args: argparse.Namespace, bot: Bot) -> int:
    from reviews.removal import remove_from_rota
    from reviews.service import ServiceError

    platform, user_id = person_identity(args.person, bot)
    try:
        said = remove_from_rota(
            services=bot.services, platform=platform, user_id=user_id, by=operator(args.by)
        )
    except ServiceError as refused:
        raise BadInput(str(refused)) from None
    print(said)
    return 0


def digest(args: argparse.Namespace, bot: Bot) -> int:
    from reviews.digest import destinations, digest_text, latest_day, post_digest, undelivered
    from reviews.outbox import drain

    services = bot.services
    last_complete = latest_day(services)
    day = parse_date(args.date) if args.date else last_complete
    if day > last_complete + timedelta(days=1):
        raise BadInput(
            f"--date: {day}'s digest covers the 24 hours to {services.digest_time:%H:%M} that "
            "day, which have not begun; for the requests since the last digest: --so-far"
        )
    if args.so_far:
        day = last_complete + timedelta(days=1)
        if args.post:
            raise BadInput("--post: only a complete day's digest is posted; drop --so-far")
    if args.post and day > last_complete:
        # Posting it would mark the day's digest as sent: the whole day's would never go.
        raise BadInput(
            f"--post: the digest for {day} is not complete until "
            f"{services.digest_time:%H:%M} that day, when it is posted by itself; only a "
            "complete day's digest is posted"
        )
    print(digest_text(services, day=day))
    if not (args.date or args.so_far):
        print("\n(That is the last complete day. For the requests since: digest --so-far)")
    if args.post and not destinations(services):
        raise BadInput("--post: no DIGEST_CHANNEL or TEAMS_DIGEST_CONVERSATION is set")
    if args.post:
        posted = post_digest(services, day=day)
        drain(services, bot.senders)  # send it now, as a running replica would
        if not posted:
            print("Already posted for that day; not posted again.")
            return 0
        waiting = undelivered(services, day=day)
        channels = ", ".join(channel for _, channel in destinations(services))
        if not waiting:
            print(f"Posted to {channels}.")
            return 0
        print(
            f"Queued, not yet sent ({'; '.join(waiting)}). "
            "A running bot sends it as soon as the platform takes it."
        )
    return 0


def given_path(text: str) -> Path:
    """A file named on the command line, from the folder it was typed in: ./scripts/run runs
    the bot in its own folder (where its database is) and says where it was called from."""
    path = Path(text).expanduser()
    return path if path.is_absolute() else Path(os.environ.get(CALLED_FROM, ".")) / path


def export(args: argparse.Namespace, bot: Bot) -> int:
    from reviews.checkin_export import write_checkin_export
    from reviews.export import ExportError, write_export

    if args.checkins and args.with_identifiers:
        raise BadInput("--checkins: the check-in export never carries identifiers")
    if args.out is None and os.environ.get(CALLED_FROM):
        # Its usual name, in the folder ./scripts/run was run in (a bad month is refused first).
        kind = "checkins-" if args.checkins else ""
        args.out = given_path(f"rapidreview-{kind}{args.month}.csv")
    try:
        if args.checkins:
            path = write_checkin_export(services=bot.services, month=args.month, out=args.out)
            print(f"Wrote {path}")
            return 0
        path = write_export(
            services=bot.services,
            month=args.month,
            out=args.out,
            with_identifiers=args.with_identifiers,
        )
    except ExportError as error:
        raise BadInput(str(error)) from None
    except OSError as error:  # a folder that does not exist, no permission, a full disk
        where = error.filename or args.out or "the export file"
        raise BadInput(f"--out: cannot write to {where} ({error.strerror or error})") from None
    print(f"Wrote {path}")
    return 0


def retention(args: argparse.Namespace, bot: Bot) -> int:
    from reviews.retention import erase

    print(erase(services=bot.services, apply=args.apply).line(bot.services))
    return 0


def settings_command(args: argparse.Namespace, settings: Settings) -> int:
    """A command that needs only the settings: no database, no platform (teams package)."""
    return teams_package(args, settings)


def teams_package(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.teams.package import PackageError, build_package

    try:
        path = build_package(settings, args.out)
    except PackageError as error:
        raise BadInput(str(error)) from None
    print(f"Wrote {path}")
    return 0


def posters(args: argparse.Namespace, bot: Bot) -> int:
    from handlers.web.posters import PosterError, write_posters

    try:
        paths = write_posters(
            wards=tuple(bot.services.wards),
            public_url=bot.settings.public_url,
            phone=bot.settings.concern_phone,
            out=args.out,
            only=args.ward,
        )
    except PosterError as error:
        raise BadInput(str(error)) from None
    print("\n".join(f"Wrote {path}" for path in paths))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, Bot], int]] = {
    "rota import": rota_import,
    "rota show": rota_show,
    "rota cover": rota_cover,
    "rota remove": rota_remove,
    "digest": digest,
    "export": export,
    "retention": retention,
    "posters": posters,
}


def person_identity(person: str, bot: Bot) -> tuple[str, str]:
    """An email is a directory identity; otherwise whoever the staff directory knows by that
    Slack or Teams user id, else by that name as the rota gives it ("Sam Patel"), when one
    person has it (BadInput when none does, or several)."""
    person = person.strip()
    if "@" in person:
        return "shell", person.lower()
    with bot.services.db.reading() as uow:
        for platform in ("slack", "teams"):
            if uow.rota.staff_by_platform_id(platform, person) is not None:
                return platform, person
        named = list(uow.rota.staff_by_name(person))
    if len(named) > 1:
        raise BadInput(
            f"{len(named)} people in the staff directory are called {person!r}: give their email"
        )
    if not named:
        raise BadInput(
            f"Nobody in the staff directory is called {person!r}: give their email as the rota "
            "has it, or their Slack or Teams user id"
        )
    found = named[0]
    if found.email:
        return "shell", found.email
    if found.slack_user_id:
        return "slack", found.slack_user_id
    return "teams", found.teams_user_id or ""


def parse_local(text: str, settings: Settings) -> datetime:
    """A local time as the rota reads one, by the same clock-change rule."""
    from rotas.times import BadTime, parse_rota_time

    try:
        return parse_rota_time(text, settings.timezone)[0]
    except BadTime as error:
        raise BadInput(f"--at: {error}") from None


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"--date: {text!r} is not a date like 2026-12-01") from None
