"""The daily check-in prompt at CHECKIN_TIME: each ward with a channel is told how many
check-ins it recorded since yesterday's prompt, of its beds; once a day per ward however many
replicas (schedulers) run, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlmodel import select

from reviews.checkin_model import CheckinForm, validate_checkin
from reviews.checkin_prompt import prompt_job
from reviews.checkins import record_checkin
from reviews.notify import Route
from reviews.outbox import drain
from reviews.wards import Ward, Wards
from storage.database import Database
from storage.tables import Outbox
from tests.support.builders import NURSE, SLACK_ROUTE, RecordingSender, make_services
from tests.support.moments import utc
from tests.support.together import at_once

TEAMS_ROUTE = Route(platform="teams", outreach_channel="19:outreach", digest_channel="19:digest")
WARDS = Wards(
    (
        Ward(code="ward-7", name="Ward 7", beds=28, slack_channel="C0WARD7",
             teams_conversation="19:ward7@thread.tacv2"),
        Ward(code="ward-9", name="Ward 9", beds=20, slack_channel="C0WARD9"),
        Ward(code="cedar", name="Cedar Ward", beds=30),  # no channel: no prompt
    )
)  # fmt: skip


def services_for(db: Database, clock, routes=(SLACK_ROUTE, TEAMS_ROUTE)):
    return replace(make_services(db, clock, routes=routes), wards=WARDS)


def check_in(services, clock, moment: tuple[int, ...], ward: str, bed: str) -> None:
    clock.at = utc(*moment)
    form = CheckinForm(ward=ward, bed=bed, respondent="patient", answer="same")
    record_checkin(services=services, checkin=validate_checkin(form), by=NURSE, source="slack")


def prompts(db: Database) -> list[Outbox]:
    with db.unit_of_work() as uow:
        query = select(Outbox).where(Outbox.key.startswith("checkin-prompt:"))
        return sorted(uow.session.exec(query).all(), key=lambda row: (row.platform, row.address))


def test_two_schedulers_prompt_each_ward_channel_once_a_day(database_url, clock):
    replicas = [Database(database_url) for _ in range(2)]
    first = services_for(replicas[0], clock)
    # Since 10:00 yesterday: beds 1 and 2 of Ward 7 (bed 2 twice); 09:59 yesterday is before.
    check_in(first, clock, (2026, 12, 1, 9, 59), "Ward 7", "5")
    check_in(first, clock, (2026, 12, 1, 10, 0), "Ward 7", "1")
    check_in(first, clock, (2026, 12, 2, 8, 0), "Ward 7", "2")
    check_in(first, clock, (2026, 12, 2, 9, 0), "Ward 7", "2")
    clock.at = datetime(2026, 12, 2, 9, 59, 59, tzinfo=UTC)
    assert prompt_job(first) == 0  # not yet CHECKIN_TIME

    clock.at = datetime(2026, 12, 2, 10, 0, 10, tzinfo=UTC)
    each = [services_for(db, clock) for db in replicas]
    results = at_once(*[lambda s=s: prompt_job(s) for s in each])
    assert sorted(results) == [0, 3]  # one replica claims them all; the other finds them taken
    rows = prompts(replicas[0])
    assert [(r.platform, r.address) for r in rows] == [
        ("slack", "C0WARD7"),
        ("slack", "C0WARD9"),
        ("teams", "19:ward7@thread.tacv2"),
    ]
    # Later that day, by either replica: nothing more. The next day: again, once.
    clock.at = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    assert prompt_job(services_for(replicas[1], clock)) == 0
    clock.at = datetime(2026, 12, 3, 10, 0, 30, tzinfo=UTC)
    assert prompt_job(services_for(replicas[1], clock)) == 3
    assert len(prompts(replicas[0])) == 6
    for db in replicas:
        db.dispose()


def test_what_the_ward_reads(db, clock):
    services = services_for(db, clock, routes=(SLACK_ROUTE,))
    check_in(services, clock, (2026, 12, 1, 10, 0), "Ward 7", "1")
    check_in(services, clock, (2026, 12, 2, 8, 0), "Ward 7", "2")
    check_in(services, clock, (2026, 12, 2, 9, 0), "Ward 7", "2")
    clock.at = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    prompt_job(services)
    slack = RecordingSender()
    drain(services, {"slack": slack})
    [ward_7] = slack.to("C0WARD7")
    assert ward_7.message.text == (
        "Daily check-in, Ward 7: 3 check-ins recorded since 10:00 yesterday (2 of 28 beds). "
        'Ask each patient, or their family, "How are you feeling today compared with '
        'yesterday?" and record it with /rapidreview checkin.'
    )
    assert slack.to("C0WARD9")[0].message.text.startswith(
        "Daily check-in, Ward 9: 0 check-ins recorded since 10:00 yesterday (0 of 20 beds)."
    )


def test_the_local_shell_shows_every_wards_prompt(db, clock):
    shell = Route(platform="shell", outreach_channel="outreach", digest_channel="digest")
    services = services_for(db, clock, routes=(shell,))
    clock.at = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    assert prompt_job(services) == 3
    assert {row.address for row in prompts(db)} == {"outreach"}


def test_prompt_time_is_local_across_a_clock_change(db, clock):
    services = services_for(db, clock, routes=(SLACK_ROUTE,))
    # 10:00 BST on Saturday 24 October 2026 is 09:00 UTC.
    clock.at = datetime(2026, 10, 24, 8, 59, tzinfo=UTC)
    assert prompt_job(services) == 0
    clock.at = datetime(2026, 10, 24, 9, 0, tzinfo=UTC)
    assert prompt_job(services) == 2
