"""The command line's commands (CONTRACT.md "Command line"), run against a built Bot.

Each command is a small function; bad input raises BadInput, which bot.main prints as one line
with exit status 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn, Protocol

from reviews.context import Services, operator
from reviews.outbox import Sender
from settings import Settings


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
    """Bad input is one line saying what is wrong, and exit status 2 (CONTRACT.md)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"rapidreview: {message} (see python bot.py --help)\n")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = OneLineParser(prog="python bot.py", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("shell", help="the local terminal chat")
    rota = commands.add_parser("rota", help="import or show the rota").add_subparsers(
        dest="rota_command", required=True, metavar="import|show|cover|remove"
    )
    rota.add_parser("import", help="import shifts from CSV or .ics").add_argument("file", type=Path)
    rota.add_parser("show", help="who holds each role").add_argument("--at", default=None)
    cover = rota.add_parser("cover", help="put someone on a role for a period")
    cover.add_argument("role")
    cover.add_argument("person", help="the covering person's email (or Slack/Teams user id)")
    cover.add_argument("--until", default=None, help="local time, e.g. 20:00 or 2026-12-01T20:00")
    cover.add_argument("--by", required=True, help="your name or email, for the audit trail")
    remove = rota.add_parser("remove", help="take someone off the rota from now")
    remove.add_argument("person", help="their email (or Slack/Teams user id)")
    remove.add_argument("--by", required=True, help="your name or email, for the audit trail")
    digest = commands.add_parser("digest", help="print (or post) the daily digest")
    digest.add_argument("--date", default=None)
    digest.add_argument("--post", action="store_true")
    export = commands.add_parser("export", help="the month's requests as CSV")
    export.add_argument("--month", required=True)
    export.add_argument("--out", type=Path, default=None)
    export.add_argument("--with-identifiers", action="store_true")
    export.add_argument(
        "--checkins", action="store_true", help="the month's daily check-ins (no identifiers)"
    )
    retention = commands.add_parser(
        "retention", help="count (or --apply: erase) identifiers past RETENTION_DAYS"
    )
    retention.add_argument("--apply", action="store_true", help="erase them, not only count")
    commands.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True, metavar="upgrade"
    ).add_parser("upgrade")
    teams = (
        commands.add_parser("teams", help="Teams app package")
        .add_subparsers(dest="teams_command", required=True, metavar="package")
        .add_parser("package")
    )
    teams.add_argument("--out", type=Path, default=Path("rapidreview-teams.zip"))
    posters = commands.add_parser("posters", help="printable A4 posters for the wards (PDF)")
    posters.add_argument("--ward", default=None, help="only this ward's code, e.g. ward-7")
    posters.add_argument("--out", type=Path, required=True, help="the folder to write them to")
    return parser.parse_args(argv)


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
    print("\n".join(report.lines()))
    return 0 if report.ok else 2


def rota_show(args: argparse.Namespace, bot: Bot) -> int:
    from rotas.view import rota_lines

    at = parse_local(args.at, bot.settings) if args.at else bot.services.clock.now()
    print("\n".join(rota_lines(services=bot.services, at=at)))
    return 0


def rota_cover(args: argparse.Namespace, bot: Bot) -> int:
    from reviews.cover import record_cover
    from reviews.service import ServiceError

    platform, user_id = person_identity(args.person)
    try:
        said = record_cover(
            services=bot.services,
            role=args.role,
            covering_platform=platform,
            covering_user_id=user_id,
            by=operator(args.by),
            until_text=args.until,
        )
    except ServiceError as refused:
        raise BadInput(str(refused)) from None
    print(said)
    return 0


def rota_remove(args: argparse.Namespace, bot: Bot) -> int:
    from reviews.removal import remove_from_rota
    from reviews.service import ServiceError

    platform, user_id = person_identity(args.person)
    try:
        said = remove_from_rota(
            services=bot.services, platform=platform, user_id=user_id, by=operator(args.by)
        )
    except ServiceError as refused:
        raise BadInput(str(refused)) from None
    print(said)
    return 0


def digest(args: argparse.Namespace, bot: Bot) -> int:
    from reviews.digest import build_digest, destinations, latest_day, post_digest
    from reviews.outbox import drain

    services = bot.services
    day = parse_date(args.date) if args.date else latest_day(services)
    print(build_digest(services, day=day).text)
    if args.post and not destinations(services):
        raise BadInput("--post: no DIGEST_CHANNEL or TEAMS_DIGEST_CONVERSATION is set")
    if args.post:
        posted = post_digest(services, day=day)
        drain(services, bot.senders)  # send it now, as a running replica would
        print("Posted." if posted else "Already posted for that day; not posted again.")
    return 0


def export(args: argparse.Namespace, bot: Bot) -> int:
    from reviews.checkin_export import write_checkin_export
    from reviews.export import ExportError, write_export

    if args.checkins and args.with_identifiers:
        raise BadInput("--checkins: the check-in export never carries identifiers")
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
    print(f"Wrote {path}")
    return 0


def retention(args: argparse.Namespace, bot: Bot) -> int:
    from reviews.retention import erase

    print(erase(services=bot.services, apply=args.apply).line(bot.services))
    return 0


def teams_package(args: argparse.Namespace, bot: Bot) -> int:
    from handlers.teams.package import PackageError, build_package

    try:
        path = build_package(bot.settings, args.out)
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
    "teams package": teams_package,
    "posters": posters,
}


def person_identity(person: str) -> tuple[str, str]:
    """An email is a directory identity; otherwise a Slack id (U…/W…) or a Teams id."""
    if "@" in person:
        return "shell", person.lower()
    return ("slack", person) if person[:1] in ("U", "W") else ("teams", person)


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
