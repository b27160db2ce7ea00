"""Responder rights follow the rota: on shift or cover now, or within the handover margin;
a rota admin can take someone off the rota; every act records the stable user id."""

from __future__ import annotations

import getpass
import json
import subprocess
from datetime import timedelta

import pytest
from sqlmodel import col, select

from reviews import service
from reviews.context import Actor, Services, operator
from reviews.cover import record_cover
from reviews.model import Outcome
from reviews.removal import remove_from_rota
from rotas.lookup import who_holds
from storage.tables import Review, ReviewEvent
from tests.support.builders import NURSE, OUTREACH, make_services, on_rota, request
from tests.support.process import run_bot
from tests.test_rota_import import ROTA

ADMIN = Actor(platform="slack", user_id="U0ADMIN", name="Rota Admin")


@pytest.fixture
def services(db, clock) -> Services:
    return make_services(db, clock, rota_admins=frozenset({"u0admin"}))


def may_acknowledge(services: Services) -> bool:
    review_id = service.raise_review(services=services, request=request(), by=NURSE).review.id
    try:
        service.acknowledge(services=services, review_id=review_id or 0, by=OUTREACH)
    except service.NotAllowed:
        return False
    return True


@pytest.mark.parametrize(
    ("shift_starts_in", "hours", "expected"),
    [
        (timedelta(days=-30), 12, False),  # a shift last month
        (timedelta(days=7), 12, False),  # a shift next week
        (timedelta(hours=-14), 12, False),  # ended 2 h ago: past the margin
        (timedelta(hours=-13), 12, True),  # ended an hour ago: handover
        (timedelta(hours=-1), 12, True),  # on shift now
        (timedelta(hours=1), 12, True),  # starts within the hour: arriving early
        (timedelta(hours=3), 12, False),  # starts in 3 h
    ],
)
def test_responders_are_those_on_duty_around_now(
    services: Services, db, clock, shift_starts_in: timedelta, hours: int, expected: bool
) -> None:
    on_rota(db, "outreach", OUTREACH.name, OUTREACH.user_id, clock.now() + shift_starts_in, hours)
    assert may_acknowledge(services) is expected


def test_whoever_took_a_request_may_finish_it_after_their_shift(services: Services, db, clock):
    on_rota(db, "outreach", OUTREACH.name, OUTREACH.user_id, clock.now() - timedelta(hours=11))
    review_id = service.raise_review(services=services, request=request(), by=NURSE).review.id
    service.acknowledge(services=services, review_id=review_id or 0, by=OUTREACH)
    clock.advance(hours=6)  # their shift ended 5 h ago
    result = service.record_outcome(
        services=services, review_id=review_id or 0, by=OUTREACH, outcome=Outcome.NO_CHANGE
    )
    assert result.changed


def test_a_rota_admin_takes_someone_off_the_rota(services: Services, db, clock) -> None:
    on_rota(db, "outreach", OUTREACH.name, OUTREACH.user_id, clock.now() - timedelta(hours=1))
    on_rota(db, "outreach", OUTREACH.name, OUTREACH.user_id, clock.now() + timedelta(days=1))
    with pytest.raises(service.NotAllowed, match="rota admin"):
        remove_from_rota(services=services, platform="slack", user_id="U01ALEX", by=OUTREACH)
    said = remove_from_rota(services=services, platform="slack", user_id="U01ALEX", by=ADMIN)
    assert said.startswith("Alex Carter is off the rota from now: 2 shift(s)")
    assert not may_acknowledge(services)
    with services.db.unit_of_work() as uow:
        assert who_holds(uow, "outreach", clock.now()) == []
        assert who_holds(uow, "outreach", clock.now() + timedelta(days=1, hours=1)) == []
        [event] = uow.session.exec(
            select(ReviewEvent).where(ReviewEvent.kind == "rota_remove")
        ).all()
    assert (event.actor, event.actor_id, event.platform) == ("Rota Admin", "U0ADMIN", "slack")
    assert json.loads(event.detail)["shifts"] == 2


def test_the_audit_trail_records_stable_ids_beside_names(services: Services, db, clock) -> None:
    on_rota(db, "outreach", OUTREACH.name, OUTREACH.user_id, clock.now())
    first = service.raise_review(services=services, request=request(), by=NURSE).review.id or 0
    second = service.raise_review(services=services, request=request(), by=NURSE).review.id or 0
    service.acknowledge(services=services, review_id=first, by=OUTREACH)
    service.record_outcome(
        services=services, review_id=first, by=OUTREACH, outcome=Outcome.NO_CHANGE
    )
    service.cancel(services=services, review_id=second, by=NURSE, reason="wrong bed")
    with services.db.unit_of_work() as uow:
        events = uow.session.exec(select(ReviewEvent).order_by(col(ReviewEvent.id))).all()
        closed, cancelled = uow.reviews.get(first), uow.reviews.get(second)
    assert [(e.kind, e.actor, e.actor_id) for e in events if e.actor != "system"] == [
        ("raised", "Ward Nurse", "U0WARDNURSE"),
        ("raised", "Ward Nurse", "U0WARDNURSE"),
        ("acknowledged", "Alex Carter", "U01ALEX"),
        ("closed", "Alex Carter", "U01ALEX"),
        ("cancelled", "Ward Nurse", "U0WARDNURSE"),
    ]
    assert isinstance(closed, Review) and isinstance(cancelled, Review)
    assert (closed.acknowledged_user, closed.closed_platform, closed.closed_user) == (
        "U01ALEX",
        "slack",
        "U01ALEX",
    )
    assert (cancelled.cancelled_platform, cancelled.cancelled_user) == ("slack", "U0WARDNURSE")


def test_the_command_line_by_is_kept_as_given_beside_the_os_user(services: Services, db, clock):
    on_rota(db, "outreach", OUTREACH.name, OUTREACH.user_id, clock.now())
    on_rota(db, "outreach-backup", "Sam Patel", "U01SAM", clock.now())
    record_cover(
        services=services,
        role="outreach",
        covering_platform="slack",
        covering_user_id="U01SAM",
        by=operator("Sister Jones (bleep 4455)"),
        until_text="20:00",
    )
    with services.db.unit_of_work() as uow:
        [event] = uow.session.exec(select(ReviewEvent).where(ReviewEvent.kind == "cover")).all()
    assert (event.actor, event.actor_id, event.platform) == (
        "Sister Jones (bleep 4455)",
        getpass.getuser(),
        "cli",
    )


@pytest.mark.slow
def test_rota_remove_from_the_command_line(tmp_path) -> None:
    def bot(*args: str) -> subprocess.CompletedProcess[str]:
        return run_bot("rota", *args, cwd=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/rr.db")

    assert bot("import", str(ROTA / "december-2026.csv")).returncode == 0
    removed = bot("remove", "alex.carter@nhs.net", "--by", "Rota Lead")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.startswith("Alex Carter is off the rota from now")
    unknown = bot("remove", "nobody@nhs.net", "--by", "Rota Lead")
    assert unknown.returncode == 2
    assert (
        unknown.stderr.strip() == "rapidreview: Nobody in the staff directory is 'nobody@nhs.net'."
    )
