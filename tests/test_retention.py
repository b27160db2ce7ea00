"""Retention (RETENTION_DAYS): identifiers and free text of requests and check-ins closed long
enough ago are erased, the audit says so, and every digest and export figure stays the same."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
import requests
from sqlmodel import SQLModel, select

from reviews.checkin_export import write_checkin_export
from reviews.checkin_model import CheckinForm, validate_checkin
from reviews.checkins import record_checkin
from reviews.digest import build_digest, collect
from reviews.export import write_export
from reviews.model import Outcome
from reviews.public import raise_from_public_page
from reviews.public_form import PublicForm, validate_public
from reviews.retention import erase, retention_job
from reviews.service import record_outcome
from storage.database import Database
from storage.migrate import upgrade
from storage.tables import Checkin, DigestRun, ReviewEvent
from tests.support.builders import NURSE, OUTREACH, make_services, on_rota
from tests.support.fake_slack import FakeSlack
from tests.support.process import ROOT, free_port, run_bot, start_slack_bot
from tests.support.public_pages import FAMILY_FORM
from tests.support.waiting import eventually
from tests.test_digest import a_known_day

IDENTIFIERS = ("9990000018", "07700 900123", "much more confused", "Raised twice", "gasping")


def a_known_month(db, clock):
    """The digest test's known day (requests closed, cancelled and open), plus check-ins."""
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", clock.now(), hours=48)
    services = make_services(db, clock)
    a_known_day(services, clock)
    clock.at = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
    for answer, wants in (("worse", "yes"), ("worse", ""), ("same", "")):
        form = CheckinForm(ward="Ward 7", bed="3", respondent="family", answer=answer,
                           worries="She is gasping at night", wants_review=wants)  # fmt: skip
        record_checkin(services=services, checkin=validate_checkin(form), by=NURSE, source="slack")
    return services


def figures(services, tmp_path, name: str) -> tuple:
    requests = write_export(
        services=services, month="2026-12", out=tmp_path / f"{name}.csv", with_identifiers=False
    )
    checkins = write_checkin_export(
        services=services, month="2026-12", out=tmp_path / f"{name}-checkins.csv"
    )
    day = date(2026, 12, 2)
    return (
        build_digest(services, day=day).text,
        collect(services, day),
        requests.read_text(),
        checkins.read_text(),
    )


def database_text(db: Database) -> str:
    """Every value of every table, as text, to look for what must be gone."""
    with db.engine.connect() as connection:
        tables = [
            SQLModel.metadata.tables[t] for t in ("review", "review_event", "outbox", "checkin")
        ]
        return "\n".join(str(row) for t in tables for row in connection.execute(t.select()))


def test_every_figure_is_the_same_after_erasure(db, clock, tmp_path):
    services = a_known_month(db, clock)
    clock.at = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)  # 99 days on: past the 90
    before = figures(services, tmp_path, "before")
    assert all(found in database_text(db) for found in IDENTIFIERS)

    counted = erase(services=services, apply=False)
    assert (counted.reviews, counted.checkins, counted.applied) == (4, 3, False)
    assert all(found in database_text(db) for found in IDENTIFIERS), "counting erased nothing"
    erased = erase(services=services, apply=True)
    assert (erased.reviews, erased.checkins) == (4, 3)

    assert figures(services, tmp_path, "after") == before
    # Requests still open keep theirs (the one a check-in raised quotes its worry); nothing of
    # a closed or cancelled one, nor of an old check-in, is left anywhere.
    with db.unit_of_work() as uow:
        closed = [uow.reviews.get(i) for i in (1, 2, 3, 5)]
        still_open = [uow.reviews.get(i) for i in (4, 6, 7)]
        old_checkins = uow.session.exec(select(Checkin)).all()
        audit = uow.session.exec(
            select(ReviewEvent).where(ReviewEvent.kind == "retention_erased")
        ).all()
    assert all(r.nhs_number is None and r.callback_number is None for r in closed)
    assert all(r.concern == "" and r.erased_at is not None for r in closed)
    assert all(r.erased_at is None and r.nhs_number for r in still_open[:2])
    assert "gasping" in still_open[2].concern
    assert all(c.worries is None and c.erased_at is not None for c in old_checkins)
    assert "Raised twice" not in database_text(db)
    assert closed[0].outcome_detail == "ICU"  # a destination is a figure, not free text
    assert len(audit) == 1 and '"reviews": 4' in audit[0].detail
    assert erase(services=services, apply=True).reviews == 0  # nothing twice


def test_the_names_a_family_gave_on_the_public_page_are_erased(db, clock):
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", clock.now(), hours=48)
    services = make_services(db, clock)
    asked = validate_public(PublicForm(**FAMILY_FORM), "Ward 7")
    raised = raise_from_public_page(
        services=services, request=asked, submission_key="web:form", sender="ab" * 32
    )
    # Taking it sends Alex the call-back number and the names, privately.
    closed = Outcome.NO_CHANGE
    record_outcome(services=services, review_id=raised.review_id, by=OUTREACH, outcome=closed)
    names = (FAMILY_FORM["your_name"], FAMILY_FORM["patient_name"], FAMILY_FORM["relationship"])
    assert all(name in database_text(db) for name in names)
    clock.advance(days=91)
    assert erase(services=services, apply=True).reviews == 1
    assert not [name for name in names if name in database_text(db)]


def test_the_daily_job_erases_once_a_day_across_replicas(db, clock):
    services = a_known_month(db, clock)
    clock.at = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)
    other = make_services(Database(db.url), clock)
    assert [retention_job(services), retention_job(other)] == [True, False]
    assert erase(services=services, apply=False).reviews == 0
    other.db.dispose()


def test_nothing_young_enough_is_touched(db, clock):
    services = a_known_month(db, clock)
    clock.at = datetime(2027, 2, 20, 12, 0, tzinfo=UTC)  # 81 days on
    assert erase(services=services, apply=True).reviews == 0
    assert all(found in database_text(db) for found in IDENTIFIERS)


def test_the_command_counts_then_applies(tmp_path, clock):
    url = f"sqlite:///{tmp_path}/rr.db"
    db = Database(url)
    upgrade(db.engine)
    a_known_month(db, clock)
    db.dispose()

    def run(*args: str) -> str:
        result = run_bot("retention", *args, DATABASE_URL=url, RETENTION_DAYS="1")
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert "run with --apply to erase them" in run()
    applied = run("--apply")
    assert applied.startswith("Erased the patient identifiers and free text of 4 requests")
    assert applied.endswith("(1 day ago).")  # RETENTION_DAYS as it was read: a typo shows
    assert run().startswith("0 requests")


@pytest.mark.slow
def test_a_short_retention_erases_nothing_in_the_minutes_after_its_warning(tmp_path, clock):
    """RETENTION_DAYS=1 (a typo?) is warned of at start: the daily job waits ten minutes, so
    the bot can be stopped and the value corrected before anything is erased."""
    url = f"sqlite:///{tmp_path}/rr.db"
    db = Database(url)
    upgrade(db.engine)
    a_known_month(db, clock)  # closed on 1-2 December 2026, days before any run of this test
    port = free_port()
    with FakeSlack() as fake:
        bot = start_slack_bot(
            fake.url, url, ROOT / "escalation.toml", RETENTION_DAYS="1", PORT=str(port)
        )
        try:
            eventually(
                lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok,
                "the bot's jobs running",
                ignoring=(requests.RequestException,),
            )
        finally:
            bot.stop()
    [said] = [line for line in bot.log if "RETENTION_DAYS=1:" in line]
    assert "first 10 minutes from now" in said and "stop the bot" in said
    assert not [line for line in bot.log if "retention: erased" in line]
    assert all(found in database_text(db) for found in IDENTIFIERS)
    db.dispose()


@pytest.mark.parametrize("days", [9, 29, 30, 90])
def test_only_a_short_retention_waits_ten_minutes_after_a_start(tmp_path, days):
    """A bot restarted more often than every ten minutes must still erase what is due: only
    the value warned of (under 30 days, perhaps a typo) waits (found by a review)."""
    from datetime import timedelta

    from bot import build, start_scheduler, stop_scheduler
    from settings import Settings

    url = f"sqlite:///{tmp_path}/rr.db"
    upgrade(Database(url).engine)
    bot = build(Settings(database_url=url, retention_days=days))
    started = datetime.now(UTC)
    start_scheduler(bot, only=("retention",))

    def ran() -> bool:
        with bot.services.db.reading() as uow:
            runs = uow.session.exec(select(DigestRun)).all()
        return any(run.destination == "retention" for run in runs)

    try:
        if days < 30:
            waits = bot.scheduler.get_job("retention").next_run_time - started
            assert timedelta(minutes=9, seconds=55) < waits < timedelta(minutes=10, seconds=5)
            assert not ran()
        else:
            eventually(ran, "the retention job's run at start", 10)
    finally:
        stop_scheduler(bot, threading.Event())
        bot.services.db.dispose()
