"""CONTRACT.md "Who may do what", cell by cell, enforced in the core (the same on every
platform). Columns: anyone, responder (on the rota now), rota admin, manager."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from reviews import service
from reviews.checkin_model import CheckinForm, validate_checkin
from reviews.checkins import record_checkin
from reviews.context import Actor, Services, operator
from reviews.cover import record_cover
from reviews.digest import digest_for
from reviews.errors import NotAllowed
from reviews.export import write_export
from reviews.model import Outcome
from reviews.permissions import check_rota_admin
from reviews.removal import remove_from_rota
from rotas.lookup import who_holds
from storage.database import Database
from storage.tables import Shift, Staff
from tests.support.builders import make_services, on_rota, request

ANYONE = Actor(platform="slack", user_id="U0ANYONE", name="Any Body")
RESPONDER = Actor(platform="slack", user_id="U01ALEX", name="Alex Carter")
ADMIN = Actor(platform="slack", user_id="U0ADMIN", name="Rota Admin")
MANAGER = Actor(platform="teams", user_id="29:manager", name="Mo", email="mo.manager@nhs.net")
RAISER = Actor(platform="slack", user_id="U0WARDNURSE", name="Ward Nurse")
COLUMNS = {"anyone": ANYONE, "responder": RESPONDER, "rota admin": ADMIN, "manager": MANAGER}


@pytest.fixture
def services(db: Database, clock) -> Services:
    on_rota(db, "outreach", RESPONDER.name, RESPONDER.user_id, clock.now() - timedelta(hours=1))
    on_rota(db, "outreach-backup", "Sam Patel", "U01SAM", clock.now() - timedelta(hours=1))
    return make_services(
        db, clock, managers=frozenset({"mo.manager@nhs.net"}), rota_admins=frozenset({"u0admin"})
    )


def allowed(do: Callable[[], object]) -> bool:
    try:
        do()
    except service.NotAllowed:
        return False
    return True


def raised(services: Services) -> int:
    result = service.raise_review(services=services, request=request(), by=RAISER)
    return result.review.id or 0


@pytest.mark.parametrize("column", COLUMNS)
def test_anyone_may_raise_a_request(services: Services, column: str) -> None:
    result = service.raise_review(services=services, request=request(), by=COLUMNS[column])
    assert result.changed


@pytest.mark.parametrize("column", COLUMNS)
def test_anyone_may_record_a_daily_checkin_and_ask_for_a_review(
    services: Services, column: str
) -> None:
    form = CheckinForm(
        ward="Ward 7", bed="3", respondent="family", answer="worse", wants_review="yes"
    )
    result = record_checkin(
        services=services, checkin=validate_checkin(form), by=COLUMNS[column], source="slack"
    )
    assert result.changed and result.reference == "RR-0001"


TAKE = {
    "acknowledge": lambda s, i, by: service.acknowledge(services=s, review_id=i, by=by),
    "attend": lambda s, i, by: service.attend(services=s, review_id=i, by=by),
    "record outcome": lambda s, i, by: service.record_outcome(
        services=s, review_id=i, by=by, outcome=Outcome.NO_CHANGE
    ),
}


@pytest.mark.parametrize("action", TAKE)
@pytest.mark.parametrize(
    ("column", "expected"),
    [("anyone", False), ("responder", True), ("rota admin", False), ("manager", False)],
)
def test_only_responders_take_requests(
    services: Services, action: str, column: str, expected: bool
) -> None:
    review_id = raised(services)
    assert allowed(lambda: TAKE[action](services, review_id, COLUMNS[column])) is expected


@pytest.mark.parametrize("column", ["rota admin", "manager"])
def test_a_rota_admin_or_manager_on_the_rota_may_take_requests(
    services: Services, db: Database, clock, column: str
) -> None:
    person = COLUMNS[column]
    if person.platform == "slack":
        on_rota(db, "site-manager", person.name, person.user_id, clock.now())
    else:
        with db.unit_of_work() as uow:
            staff = uow.rota.add_staff(Staff(name=person.name, teams_user_id=person.user_id))
            uow.session.add(
                Shift(role="site-manager", staff_id=staff.id or 0, start=clock.now(),
                      end=clock.now() + timedelta(hours=8), source="t", imported_at=clock.now())
            )  # fmt: skip
    assert allowed(lambda: TAKE["acknowledge"](services, raised(services), person))


@pytest.mark.parametrize(
    ("column", "expected"),
    [("raiser", True), ("anyone", False), ("responder", True), ("rota admin", False),
     ("manager", False)],
)  # fmt: skip
def test_who_may_cancel(services: Services, column: str, expected: bool) -> None:
    review_id = raised(services)
    by = RAISER if column == "raiser" else COLUMNS[column]
    assert (
        allowed(lambda: service.cancel(services=services, review_id=review_id, by=by, reason="x"))
        is expected
    )


def test_a_review_a_family_asked_for_at_their_checkin_is_not_the_recorders_to_cancel(
    services: Services,
) -> None:
    """Martha's Rule: a patient's or family's own request goes around the team treating the
    patient. The nurse who recorded the check-in did not raise the review it asked for, so
    cannot cancel it; the outreach team on duty can."""
    form = CheckinForm(
        ward="Ward 7", bed="3", respondent="family", answer="worse", wants_review="yes"
    )
    result = record_checkin(
        services=services, checkin=validate_checkin(form), by=RAISER, source="slack"
    )
    assert result.review is not None and result.review.id is not None
    review_id = result.review.id
    with pytest.raises(NotAllowed, match="asked for this review at their daily check-in"):
        service.cancel(services=services, review_id=review_id, by=RAISER, reason="better now")
    service.cancel(services=services, review_id=review_id, by=RESPONDER, reason="seen on ward")


def cover(services: Services, by: Actor, role: str) -> str:
    return record_cover(
        services=services,
        role=role,
        covering_platform="slack",
        covering_user_id="U01SAM",
        by=by,
        until_text="23:00",
    )


@pytest.mark.parametrize(
    ("column", "expected"),
    [("anyone", False), ("responder", True), ("rota admin", True), ("manager", False)],
)
def test_who_may_record_cover_for_their_own_shift(
    services: Services, column: str, expected: bool
) -> None:
    # The responder holds outreach: giving it up is theirs to do.
    assert allowed(lambda: cover(services, COLUMNS[column], "outreach")) is expected


@pytest.mark.parametrize(
    ("column", "expected"),
    [("anyone", False), ("responder", False), ("rota admin", True), ("manager", False)],
)
def test_who_may_record_cover_for_anyone(services: Services, column: str, expected: bool) -> None:
    # Nobody but Sam holds outreach-backup: the responder cannot hand over someone else's role.
    assert allowed(lambda: cover(services, COLUMNS[column], "outreach-backup")) is expected


@pytest.mark.parametrize(
    ("column", "expected"),
    [("anyone", False), ("responder", False), ("rota admin", True), ("manager", False)],
)
def test_who_may_import_a_rota(services: Services, column: str, expected: bool) -> None:
    assert allowed(lambda: check_rota_admin(services, COLUMNS[column], "import a rota")) is expected


@pytest.mark.parametrize(
    ("column", "expected"),
    [("anyone", False), ("responder", False), ("rota admin", True), ("manager", False)],
)
def test_who_may_take_someone_off_the_rota(
    services: Services, clock, column: str, expected: bool
) -> None:
    def remove() -> object:
        return remove_from_rota(
            services=services, platform="slack", user_id="U01SAM", by=COLUMNS[column]
        )

    assert allowed(remove) is expected
    with services.db.unit_of_work() as uow:
        holding = [person.name for person in who_holds(uow, "outreach-backup", clock.now())]
    assert holding == ([] if expected else ["Sam Patel"])


@pytest.mark.parametrize(
    ("column", "expected"),
    [("anyone", False), ("responder", False), ("rota admin", False), ("manager", True)],
)
def test_who_may_see_the_digest(services: Services, column: str, expected: bool) -> None:
    assert allowed(lambda: digest_for(services=services, by=COLUMNS[column])) is expected


@pytest.mark.parametrize(
    ("column", "expected"),
    [("anyone", False), ("responder", False), ("rota admin", False), ("manager", True)],
)
def test_who_may_export(services: Services, tmp_path: Path, column: str, expected: bool) -> None:
    def export() -> object:
        return write_export(
            services=services,
            month="2026-12",
            out=tmp_path / "december.csv",
            with_identifiers=False,
            by=COLUMNS[column],
        )

    assert allowed(export) is expected
    assert (tmp_path / "december.csv").exists() is expected


def test_the_command_line_is_the_operators_and_not_checked(services: Services) -> None:
    assert allowed(lambda: digest_for(services=services, by=operator("ops")))
    assert allowed(lambda: cover(services, operator("ops"), "outreach-backup"))
    assert allowed(lambda: check_rota_admin(services, operator("ops"), "import a rota"))
