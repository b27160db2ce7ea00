"""Who holds a role, and who is next: cover, then shifts, else nobody; across clock changes."""

from __future__ import annotations

from datetime import datetime, timedelta

from reviews.context import Actor
from reviews.cover import record_cover
from rotas.importer import import_rota
from rotas.lookup import holdings, next_handover, who_holds
from rotas.view import rota_lines
from tests.support.builders import make_services, on_rota
from tests.support.moments import utc
from tests.test_rota_import import ROTA

ADMIN = Actor(platform="slack", user_id="U0ADMIN", name="Rota Admin")


def cover_outreach(services, user_id: str, until: str) -> None:
    record_cover(
        services=services,
        role="outreach",
        covering_platform="slack",
        covering_user_id=user_id,
        by=ADMIN,
        until_text=until,
    )


def names(db, role: str, at: datetime) -> list[str]:
    with db.unit_of_work() as uow:
        return [p.name for p in who_holds(uow, role, at)]


def test_nobody_on_an_empty_rota_and_never_an_exception(db, clock):
    with db.unit_of_work() as uow:
        assert who_holds(uow, "outreach", clock.now()) == []
        assert next_handover(uow, "outreach", clock.now()) is None
        assert who_holds(uow, "no-such-role", clock.now()) == []


def test_overlapping_shifts_both_hold_the_role(db, clock):
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", utc(2026, 12, 1, 8))
    on_rota(db, "outreach", "Sam Patel", "U01SAM", utc(2026, 12, 1, 18))
    assert names(db, "outreach", utc(2026, 12, 1, 17)) == ["Alex Carter"]
    assert names(db, "outreach", utc(2026, 12, 1, 19)) == ["Alex Carter", "Sam Patel"]
    assert names(db, "outreach", utc(2026, 12, 1, 20)) == ["Sam Patel"]  # a shift's end is out
    with db.unit_of_work() as uow:
        when, after = next_handover(uow, "outreach", utc(2026, 12, 1, 9))
        assert when == utc(2026, 12, 1, 18) and [p.name for p in after] == [
            "Alex Carter",
            "Sam Patel",
        ]


def test_cover_wins_over_the_shift_and_the_shift_resumes_after(db, clock):
    services = make_services(db, clock, rota_admins=frozenset({"u0admin"}))
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", utc(2026, 12, 1, 8))
    on_rota(db, "outreach-backup", "Sam Patel", "U01SAM", utc(2026, 12, 1, 8))
    cover_outreach(services, "U01SAM", until="11:00")
    assert names(db, "outreach", utc(2026, 12, 1, 10)) == ["Sam Patel"]
    assert names(db, "outreach", utc(2026, 12, 1, 11)) == ["Alex Carter"]
    with db.unit_of_work() as uow:
        assert next_handover(uow, "outreach", clock.now())[0] == utc(2026, 12, 1, 11)


def test_each_holder_is_named_once_cover_first_else_the_earliest_shift_first(db, clock):
    on_rota(db, "outreach", "Sam Patel", "U01SAM", utc(2026, 12, 1, 6))
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", utc(2026, 12, 1, 8))
    on_rota(db, "outreach", "Sam Patel", "U01SAM", utc(2026, 12, 1, 8, 30))  # Sam's second shift
    on_rota(db, "outreach-backup", "Kim Lee", "U01KIM", utc(2026, 12, 1, 0), hours=24)
    assert names(db, "outreach", utc(2026, 12, 1, 9)) == ["Sam Patel", "Alex Carter"]

    services = make_services(db, clock, rota_admins=frozenset({"u0admin"}))
    cover_outreach(services, "U01KIM", until="12:00")
    assert names(db, "outreach", utc(2026, 12, 1, 10)) == ["Kim Lee"]  # the shifts off the hook
    assert names(db, "outreach", utc(2026, 12, 1, 12)) == ["Sam Patel", "Alex Carter"]


def test_a_gap_is_nobody_and_next_handover_says_who_comes(db, clock):
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", utc(2026, 12, 1, 8))
    on_rota(db, "outreach", "Priya Shah", "U01PRIYA", utc(2026, 12, 1, 22))
    assert names(db, "outreach", utc(2026, 12, 1, 21)) == []
    with db.unit_of_work() as uow:
        when, after = next_handover(uow, "outreach", utc(2026, 12, 1, 9))
        assert (when, after) == (utc(2026, 12, 1, 20), [])
        when, after = next_handover(uow, "outreach", utc(2026, 12, 1, 21))
        assert when == utc(2026, 12, 1, 22) and [p.name for p in after] == ["Priya Shah"]
        stretches = holdings(uow, "outreach", utc(2026, 12, 1, 0), utc(2026, 12, 2, 12))
    assert [(s.start.hour, s.end.hour, [p.name for p in s.people]) for s in stretches] == [
        (0, 8, []),
        (8, 20, ["Alex Carter"]),
        (20, 22, []),
        (22, 10, ["Priya Shah"]),
        (10, 12, []),
    ]


def test_back_to_back_shifts_of_one_person_are_no_handover(db, clock):
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", utc(2026, 12, 1, 8))
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", utc(2026, 12, 1, 20))
    with db.unit_of_work() as uow:
        when, after = next_handover(uow, "outreach", utc(2026, 12, 1, 9))
    assert (when, after) == (utc(2026, 12, 2, 8), [])


def test_handovers_across_both_clock_changes(db, clock):
    services = make_services(db, clock)
    assert import_rota(services=services, path=ROTA / "autumn-2026.csv").ok
    assert import_rota(services=services, path=ROTA / "spring-2027.csv").ok
    with db.unit_of_work() as uow:
        # 20:00 BST on 24 Oct is 19:00 UTC; 08:00 GMT on 25 Oct is 08:00 UTC: 13 hours.
        assert next_handover(uow, "outreach", utc(2026, 10, 24, 12))[0] == utc(2026, 10, 24, 19)
        assert next_handover(uow, "outreach", utc(2026, 10, 24, 19))[0] == utc(2026, 10, 25, 8)
        # 20:00 GMT on 27 Mar is 20:00 UTC; 08:00 BST on 28 Mar is 07:00 UTC: 11 hours.
        assert next_handover(uow, "outreach", utc(2027, 3, 27, 12))[0] == utc(2027, 3, 27, 20)
        assert next_handover(uow, "outreach", utc(2027, 3, 27, 20))[0] == utc(2027, 3, 28, 7)
    # Through the repeated hour and the missing one, the night nurse holds the bleep.
    for moment in (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30), utc(2027, 3, 28, 1)):
        assert names(db, "outreach", moment) == ["Priya Shah"]


def test_rota_lines_name_every_role_who_holds_it_until_when_and_who_is_next(db, clock):
    services = make_services(db, clock)
    assert import_rota(services=services, path=ROTA / "spring-2027.csv").ok
    on_rota(db, "pharmacist", "Ben Ito", "U01BEN", utc(2027, 3, 27, 9), hours=8)
    lines = rota_lines(services=services, at=utc(2027, 3, 27, 21))
    assert lines == [
        "icu-registrar: nobody on call, no change in the next 14 days",
        "outreach: Priya Shah until 08:00 Sun 28 Mar; then Tom Bennett",
        "outreach-backup: nobody on call, no change in the next 14 days",
        "site-manager: nobody on call, no change in the next 14 days",
        "pharmacist: nobody on call, no change in the next 14 days",
    ]
    morning = rota_lines(services=services, at=utc(2027, 3, 27, 10))
    assert "outreach: Alex Carter until 20:00 Sat 27 Mar; then Priya Shah" in morning
    assert "pharmacist: Ben Ito until 17:00 Sat 27 Mar; then nobody on call" in morning
    evening = rota_lines(services=services, at=utc(2027, 3, 28, 18, 30))  # 19:30 BST
    assert "outreach: Tom Bennett until 20:00 Sun 28 Mar; then nobody on call" in evening


def test_rota_lines_show_cover_and_when_a_gap_ends(db, clock):
    services = make_services(db, clock, rota_admins=frozenset({"u0admin"}))
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", utc(2026, 12, 1, 8))
    on_rota(db, "outreach-backup", "Sam Patel", "U01SAM", utc(2026, 12, 1, 12))
    record_cover(
        services=services,
        role="outreach",
        covering_platform="slack",
        covering_user_id="U01SAM",
        by=ADMIN,
        until_text=None,
    )
    lines = rota_lines(services=services, at=clock.now() + timedelta(minutes=1))
    assert "outreach: Sam Patel (cover) until 20:00 Tue 01 Dec; then nobody on call" in lines
    assert "outreach-backup: nobody on call until 12:00 Tue 01 Dec; then Sam Patel" in lines
