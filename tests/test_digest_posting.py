"""When the digest goes out: local days across clock changes, once per destination however many
replicas run, and late (marked so) after downtime."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlmodel import col, select

from reviews import service
from reviews.digest import collect, digest_job, digest_text, post_digest, window_for
from reviews.notify import Route
from reviews.outbox import drain
from storage.database import Database
from storage.tables import DigestRun, Outbox
from tests.support.builders import NURSE, SLACK_ROUTE, RecordingSender, make_services, request
from tests.support.moments import utc
from tests.support.together import at_once

TEAMS_ROUTE = Route(platform="teams", outreach_channel="19:outreach", digest_channel="19:digest")


def raise_at(services, clock, *moment: int) -> None:
    clock.at = utc(*moment)
    service.raise_review(services=services, request=request(), by=NURSE)


def test_autumn_digest_day_is_25_hours(db, clock):
    services = make_services(db, clock)
    # 08:00 BST on 24 October is 07:00 UTC; 08:00 GMT on the 25th is 08:00 UTC.
    for moment in (
        (2026, 10, 24, 6, 59),
        (2026, 10, 24, 7, 0),
        (2026, 10, 25, 7, 59),
        (2026, 10, 25, 8, 0),
    ):
        raise_at(services, clock, *moment)
    window = window_for(services, date(2026, 10, 25))
    assert (window.start, window.hours) == (datetime(2026, 10, 24, 7, 0, tzinfo=UTC), 25)
    assert collect(services, date(2026, 10, 25)).figures.raised == 2
    text = digest_text(services, day=date(2026, 10, 25))
    assert "the 25 hours from 08:00 Sat 24 Oct to 08:00 Sun 25 Oct" in text


def test_spring_digest_day_is_23_hours(db, clock):
    services = make_services(db, clock)
    # 08:00 GMT on 27 March is 08:00 UTC; 08:00 BST on the 28th is 07:00 UTC.
    for moment in (
        (2027, 3, 27, 7, 59),
        (2027, 3, 27, 8, 0),
        (2027, 3, 28, 6, 59),
        (2027, 3, 28, 7, 0),
    ):
        raise_at(services, clock, *moment)
    window = window_for(services, date(2027, 3, 28))
    assert (window.end, window.hours) == (datetime(2027, 3, 28, 7, 0, tzinfo=UTC), 23)
    assert collect(services, date(2027, 3, 28)).figures.raised == 2
    assert (
        "the 23 hours from 08:00 Sat 27 Mar to 08:00 Sun 28 Mar"
        in digest_text(services, day=date(2027, 3, 28))
    )


def digest_rows(db: Database) -> list[Outbox]:
    with db.unit_of_work() as uow:
        rows = uow.session.exec(select(Outbox).where(Outbox.key.startswith("digest:"))).all()
    return sorted(rows, key=lambda row: row.platform)


def test_two_replicas_at_once_post_once_per_destination(database_url, clock):
    clock.at = datetime(2026, 12, 2, 8, 0, 5, tzinfo=UTC)
    replicas = [Database(database_url) for _ in range(2)]
    each = [make_services(db, clock, routes=(SLACK_ROUTE, TEAMS_ROUTE)) for db in replicas]
    results = at_once(*[lambda s=s: digest_job(s) for s in each])
    assert sorted(results) == [False, True]
    rows = digest_rows(replicas[0])
    assert [(r.platform, r.address) for r in rows] == [
        ("slack", "C0DIGEST"),
        ("teams", "19:digest"),
    ]
    # Asked again, by the job or by hand, nothing more goes.
    services = make_services(replicas[1], clock, routes=(SLACK_ROUTE, TEAMS_ROUTE))
    assert not digest_job(services)
    assert not post_digest(services, day=date(2026, 12, 2))
    assert len(digest_rows(replicas[0])) == 2
    for db in replicas:
        db.dispose()


def test_job_waits_for_digest_time_and_posts_on_time(db, clock):
    services = make_services(db, clock)
    clock.at = datetime(2026, 12, 2, 7, 59, 59, tzinfo=UTC)
    digest_job(services)  # posts 1 December's digest, which is long overdue: that is all
    assert [r.day for r in runs(db)] == [date(2026, 12, 1)]
    clock.at = datetime(2026, 12, 2, 8, 0, 30, tzinfo=UTC)
    assert digest_job(services)
    assert runs(db)[-1].day == date(2026, 12, 2) and not runs(db)[-1].late
    slack = RecordingSender()
    drain(services, {"slack": slack})
    text = slack.to("C0DIGEST")[-2].message.text  # the figures; the chart follows
    assert text.startswith("Rapid review digest for Wed 02 Dec 2026") and "Sent late" not in text


def runs(db: Database) -> list[DigestRun]:
    with db.unit_of_work() as uow:
        return list(uow.session.exec(select(DigestRun).order_by(col(DigestRun.day))).all())


def test_missed_digest_is_sent_late_after_a_restart(db, clock):
    services = make_services(db, clock)
    raise_at(services, clock, 2026, 12, 3, 9, 0)
    # The bot was down from before 08:00 on 2 December until 13:00 on the 4th.
    clock.at = datetime(2026, 12, 4, 13, 0, tzinfo=UTC)
    assert digest_job(services)
    assert not digest_job(services)
    (run,) = runs(db)
    assert (run.day, run.late) == (date(2026, 12, 4), True)  # only the latest missed day
    slack = RecordingSender()
    drain(services, {"slack": slack})
    (item,) = [i for i in slack.to("C0DIGEST") if "Rapid review digest" in i.message.text]
    assert "Sent late: the bot was not running at 08:00." in item.message.text
    assert "Requests raised: 1" in item.message.text


@pytest.mark.parametrize("routes", [(), (Route("slack", "C0OUTREACH"),)])
def test_no_digest_channel_means_nothing_to_post(db, clock, routes):
    services = make_services(db, clock, routes=routes)
    assert not digest_job(services)
    assert not post_digest(services, day=date(2026, 12, 1))
    assert runs(db) == []
