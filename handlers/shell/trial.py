"""Setting up the local trial: its own database when a trust's bot is configured, and the
person at the keyboard on every free role of the rota.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from reviews import rota_jobs
from reviews.context import Actor, Services
from reviews.messages import local_time
from reviews.notify import Route
from settings import HERE, Settings, mask_url
from storage.tables import Shift, Staff

SHELL_USER = Actor(platform="shell", user_id="you@shell.local", name="Shell user")
SHELL_ROUTE = Route(platform="shell", outreach_channel="outreach", digest_channel="digest")
TRIAL_SHIFT = timedelta(hours=12)
# A configured trust's bot keeps its database; the shell plays in this file instead.
TRIAL_DATABASE = "sqlite:///rapidreview-shell.db"
EXAMPLE_WARDS = HERE / "wards.example.toml"


def trial_settings(settings: Settings) -> tuple[Settings, str | None]:
    """The settings the shell runs with, and a line to say why they differ, if they do.

    With Slack or Teams configured, .env describes a trust's live bot: the shell must neither
    write to its rota and requests nor send through its platforms, so it gets its own SQLite
    file and no platform. The policy, time zone and fallback contact stay, so a trust can try
    its own configuration. Without a wards file the trial uses wards.example.toml's.
    """
    # The trial's public pages are for this computer only, and have wards to show.
    settings = dataclasses.replace(
        settings, host="127.0.0.1", wards_file=settings.wards_file or EXAMPLE_WARDS
    )
    if not (settings.slack_configured or settings.teams_configured):
        return settings, None
    trial = dataclasses.replace(
        settings,
        database_url=TRIAL_DATABASE,
        slack_bot_token="",
        slack_signing_secret="",
        slack_app_token="",
        teams_app_id="",
        teams_app_password="",
    )
    return trial, (
        "Slack or Teams is configured, so this shell leaves that bot's database alone and "
        f"sends nothing to Slack or Teams: it uses its own trial database, {where(trial)}."
    )


def where(settings: Settings) -> str:
    """The database as a person can find it: a SQLite file's full path, else the URL with
    no password."""
    url = settings.database_url
    if url.startswith("sqlite") and ":///" in url and ":memory:" not in url:
        return str(Path(url.split(":///", 1)[1]).resolve())
    return mask_url(url)


def take_free_roles(services: Services) -> str:
    """For the trial the person at the keyboard holds every policy role nobody else holds,
    for TRIAL_SHIFT; the one line that says so.

    The handover notices and rota-gap warnings those shifts cause are that same news told
    role by role, so they are settled here, unprinted, before the scheduler would print them.
    """
    now = services.clock.now()
    taken: list[str] = []
    with services.db.unit_of_work() as uow:
        me = uow.rota.staff_by_email(SHELL_USER.user_id) or uow.rota.add_staff(
            Staff(name=SHELL_USER.name, email=SHELL_USER.user_id)
        )
        assert me.id is not None
        me.name = SHELL_USER.name  # a trial database from before the name changed
        for role in services.policy.roles():
            if not uow.rota.shifts_at(role, now) and not uow.rota.covers_at(role, now):
                taken.append(role)
                shift = Shift(
                    role=role,
                    staff_id=me.id,
                    start=now,
                    end=now + TRIAL_SHIFT,
                    source="shell",
                    imported_at=now,
                )
                uow.session.add(shift)
    if not taken:
        return "For this trial you are on the rota as it stands (type rota to see it)."
    rota_jobs.announce_handovers(services)
    rota_jobs.warn_cover_gaps(services)
    with services.db.unit_of_work() as uow:
        prefixes = [f"{kind}:{role}:" for role in taken for kind in ("handover", "rota-gap")]
        uow.outbox.settle(platform="shell", key_prefixes=prefixes, at=now)
    until = local_time(now + TRIAL_SHIFT, services.timezone)
    hours = int(TRIAL_SHIFT.total_seconds() // 3600)
    return (
        f"For this trial you hold {', '.join(taken)}: a {hours}-hour shift until {until} "
        "(cover ROLE until TIME keeps a role longer)."
    )
