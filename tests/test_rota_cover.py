"""Cover and swaps: who may record them, until when, and that the override wins and is audited."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
from sqlalchemy import event
from sqlmodel import select

from reviews import outbox
from reviews.context import Actor
from reviews.cover import record_cover
from reviews.service import NotAllowed, NotFound, ServiceError
from rotas.lookup import who_holds
from rotas.view import rota_lines
from storage.tables import Cover, ReviewEvent
from tests.support.builders import RecordingSender, make_services, on_rota
from tests.support.clock import FrozenClock
from tests.support.moments import utc
from tests.support.teams_activities import on_teams_rota
from tests.support.together import at_once

ADMIN = Actor(platform="slack", user_id="U0ADMIN", name="Rota Admin")
ALEX = Actor(platform="slack", user_id="U01ALEX", name="Alex Carter")
SAM = Actor(platform="slack", user_id="U01SAM", name="Sam Patel")


@pytest.fixture
def services(db, clock):
    """09:00 on 1 Dec: Alex holds outreach 08:00-20:00; Sam holds outreach-backup."""
    on_rota(
        db, "outreach", "Alex Carter", "U01ALEX", utc(2026, 12, 1, 8), email="alex.carter@nhs.net"
    )
    on_rota(db, "outreach-backup", "Sam Patel", "U01SAM", utc(2026, 12, 1, 8))
    return make_services(db, clock, rota_admins=frozenset({"u0admin", "lead@nhs.net"}))


def cover(services, by: Actor, who: str = "U01SAM", until: str | None = None, role="outreach"):
    return record_cover(
        services=services,
        role=role,
        covering_platform="slack",
        covering_user_id=who,
        by=by,
        until_text=until,
    )


def holders(services, at: datetime, role: str = "outreach") -> list[str]:
    with services.db.unit_of_work() as uow:
        return [p.name for p in who_holds(uow, role, at)]


def test_the_holder_hands_the_bleep_over_until_the_end_of_the_shift(services):
    said = cover(services, by=ALEX)
    assert said == "Sam Patel now holds outreach until 20:00 Tue 01 Dec (instead of Alex Carter)."
    assert holders(services, utc(2026, 12, 1, 19, 59)) == ["Sam Patel"]
    assert holders(services, utc(2026, 12, 1, 20)) == []
    with services.db.unit_of_work() as uow:
        events = uow.session.exec(select(ReviewEvent).where(ReviewEvent.kind == "cover")).all()
    assert [(e.review_id, e.actor, e.platform) for e in events] == [(None, "Alex Carter", "slack")]
    detail = json.loads(events[0].detail)
    assert detail["role"] == "outreach" and detail["covering"] == "Sam Patel"
    assert detail["instead_of"] == ["Alex Carter"]


def test_a_holder_cannot_hand_over_someone_elses_shift(services):
    """Alex holds outreach until 20:00 and Jordan the night after: Alex may give up Alex's own
    time, not Jordan's night (the contract: cover "for their own shifts")."""
    on_rota(services.db, "outreach", "Jordan Lee", "U01JORDAN", utc(2026, 12, 1, 20))
    with pytest.raises(ServiceError) as refused:
        cover(services, by=ALEX, until="2026-12-03T08:00")
    assert str(refused.value) == (
        "You can hand over only your own time on outreach (until 20:00 Tue 01 Dec), not Jordan "
        "Lee's. Ask a rota admin."
    )
    with pytest.raises(ServiceError):
        cover(services, by=ALEX, until="20:01")
    assert holders(services, utc(2026, 12, 1, 22)) == ["Jordan Lee"]
    assert "until 20:00 Tue 01 Dec" in cover(services, by=ALEX, until="20:00")
    assert holders(services, utc(2026, 12, 1, 22)) == ["Jordan Lee"]
    assert "Jordan Lee now holds outreach until 08:00 Wed 02 Dec" in cover(
        services, by=ADMIN, who="U01JORDAN", until="2026-12-02T08:00"
    )  # a rota admin may


def test_a_holder_cannot_hand_over_a_colleague_holding_the_role_beside_them(services):
    """Two people may hold a role at once, and a cover replaces every holder: Alex giving up
    outreach must not take Jordan, on the same role at the same time, off the bleep."""
    on_rota(services.db, "outreach", "Jordan Lee", "U01JORDAN", utc(2026, 12, 1, 8))
    with pytest.raises(ServiceError) as refused:
        cover(services, by=ALEX)
    assert str(refused.value) == (
        "You can hand over only your own time on outreach (until 20:00 Tue 01 Dec), not Jordan "
        "Lee's. Ask a rota admin."
    )
    assert holders(services, utc(2026, 12, 1, 15)) == ["Alex Carter", "Jordan Lee"]


def test_a_holders_own_time_ends_where_someone_elses_cover_begins(services, clock):
    """A rota admin has put Jordan on outreach 14:00-16:00: Alex's own time ends at 14:00, so
    Alex handing over with no end time hands over until 14:00, and Jordan keeps 14:00-16:00."""
    jordan = on_rota(services.db, "outreach-backup", "Jordan Lee", "U01JORDAN", utc(2026, 12, 2))
    with services.db.unit_of_work() as uow:
        uow.session.add(
            Cover(role="outreach", staff_id=jordan.id, start=utc(2026, 12, 1, 14),
                  end=utc(2026, 12, 1, 16), recorded_by="Rota Admin", recorded_at=clock.now())
        )  # fmt: skip
    said = cover(services, by=ALEX)
    assert said.startswith("Sam Patel now holds outreach until 14:00 Tue 01 Dec")
    assert holders(services, utc(2026, 12, 1, 15)) == ["Jordan Lee"]
    assert holders(services, utc(2026, 12, 1, 17)) == ["Alex Carter"]


def test_a_holder_may_hand_over_to_a_colleague_holding_the_role_beside_them(services):
    """Two on the role at once: Alex may give it to Jordan, who loses nothing by it."""
    on_rota(services.db, "outreach", "Jordan Lee", "U01JORDAN", utc(2026, 12, 1, 8))
    said = cover(services, by=ALEX, who="U01JORDAN")
    assert said.startswith("Jordan Lee now holds outreach until 20:00 Tue 01 Dec")
    assert holders(services, utc(2026, 12, 1, 15)) == ["Jordan Lee"]


def test_a_rota_admin_records_cover_until_a_time(services, clock):
    said = cover(services, by=ADMIN, until="12:30")
    assert said.startswith("Sam Patel now holds outreach until 12:30 Tue 01 Dec")
    assert holders(services, utc(2026, 12, 1, 12, 29)) == ["Sam Patel"]
    assert holders(services, utc(2026, 12, 1, 12, 30)) == ["Alex Carter"]
    by_email = Actor(platform="teams", user_id="29:lead", name="Lead", email="Lead@nhs.net")
    assert "until 08:00 Wed 02 Dec" in cover(services, by=by_email, until="2026-12-02T08:00")


def test_anyone_else_is_refused_with_a_reason(services):
    with pytest.raises(NotAllowed) as refused:
        cover(services, by=SAM, who="U01SAM")
    assert str(refused.value) == (
        "Only a rota admin, or the person holding outreach now (Alex Carter), can record cover "
        "for it. Ask a rota admin."
    )
    assert holders(services, utc(2026, 12, 1, 10)) == ["Alex Carter"]


def test_cover_over_cover_replaces_it_and_the_earlier_cover_resumes(services, clock):
    on_rota(services.db, "icu-registrar", "Dr Fatima Malik", "U01FATIMA", utc(2026, 12, 1, 0))
    cover(services, by=ADMIN, until="18:00")
    clock.advance(hours=1)
    cover(services, by=SAM, who="U01FATIMA", until="12:00")  # Sam holds it now: allowed
    assert holders(services, utc(2026, 12, 1, 11)) == ["Dr Fatima Malik"]
    assert holders(services, utc(2026, 12, 1, 13)) == ["Sam Patel"]
    assert holders(services, utc(2026, 12, 1, 19)) == ["Alex Carter"]


@pytest.mark.parametrize(
    ("until", "error", "sentence"),
    [
        ("08:00 yesterday", ServiceError, "I could not read '08:00 yesterday' as a time"),
        ("2026-12-01T08:30", ServiceError, "2026-12-01T08:30 has already passed"),
        ("2026-12-20T08:00", ServiceError, "Cover is for at most 7 days"),
    ],
)
def test_a_bad_until_is_refused_with_a_sentence(services, until, error, sentence):
    with pytest.raises(error) as refused:
        cover(services, by=ADMIN, until=until)
    assert str(refused.value).startswith(sentence)


def test_unknown_roles_and_people_are_refused(services):
    with pytest.raises(NotFound) as no_role:
        cover(services, by=ADMIN, role="pharmacist")
    assert str(no_role.value).startswith("There is no role called 'pharmacist'. Roles: ")
    with pytest.raises(NotFound) as no_person:
        cover(services, by=ADMIN, who="U0STRANGER")
    assert "not in the staff directory" in str(no_person.value)


def test_with_nobody_on_shift_the_admin_must_say_until_when(services):
    with pytest.raises(ServiceError) as refused:
        cover(services, by=ADMIN, role="site-manager")
    assert str(refused.value) == (
        "Nobody's shift on site-manager runs now, so say until when, e.g. until 20:00."
    )
    assert "instead of nobody" in cover(services, by=ADMIN, role="site-manager", until="17:00")


def slow_cover_insert(_conn, _cursor, statement, *_args) -> None:
    if statement.lstrip().upper().startswith("INSERT INTO COVER"):
        time.sleep(0.3)


def test_two_covers_recorded_at_once_leave_one_holder(services, database_url, clock):
    import dataclasses

    from storage.database import Database

    on_rota(services.db, "icu-registrar", "Dr Fatima Malik", "U01FATIMA", utc(2026, 12, 1, 0))
    # Each as another replica, on its own connection pool.
    own = [dataclasses.replace(services, db=Database(database_url)) for _ in range(2)]
    for replica in own:
        # A database slow to write (a busy server): each replica has read the role's cover
        # and holds its transaction open while the other reads, as replicas do under load.
        event.listen(replica.db.engine, "before_cursor_execute", slow_cover_insert)
    try:
        at_once(
            lambda: cover(own[0], by=ADMIN, who="U01SAM", until="18:00"),
            lambda: cover(own[1], by=ADMIN, who="U01FATIMA", until="18:00"),
        )
    finally:
        for replica in own:
            replica.db.dispose()
    assert len(holders(services, utc(2026, 12, 1, 12))) == 1


def test_the_holder_keeping_their_own_role_longer_is_not_told_nobody_held_it(services):
    said = cover(services, by=ALEX, who="U01ALEX", until="22:00")
    assert said == "Alex Carter now holds outreach until 22:00 Tue 01 Dec (already holding it)."
    assert holders(services, utc(2026, 12, 1, 21)) == ["Alex Carter"]


def test_a_teams_person_is_found_by_their_object_id_typed_in_upper_case(services):
    grace = "9ace9ace-0000-4000-8000-000000000005"
    on_teams_rota(services.db, "outreach-backup", "Grace Okafor", grace, utc(2026, 12, 2, 8))
    said = record_cover(
        services=services,
        role="outreach",
        covering_platform="teams",
        covering_user_id=grace.upper(),
        by=ADMIN,
        until_text=None,
    )
    assert said.startswith("Grace Okafor now holds outreach")
    with pytest.raises(NotFound):  # Slack's ids are upper case by design: exactly as given
        cover(services, by=ADMIN, who="u01sam")


def test_until_a_time_in_the_repeated_hour_is_its_next_reading_not_tomorrows(db):
    """01:10 GMT on 25 Oct 2026, the clocks went back an hour ago: Priya's night runs to 08:00.
    "Until 01:30" is twenty minutes away (the hour's second 01:30), not 01:30 tomorrow,
    which took Priya's whole night and the next day off the bleep."""
    clock = FrozenClock(utc(2026, 10, 25, 1, 10))
    on_rota(db, "outreach", "Priya Shah", "U01PRIYA", utc(2026, 10, 24, 19), hours=13)
    on_rota(db, "outreach-backup", "Sam Patel", "U01SAM", utc(2026, 10, 24, 19), hours=13)
    services = make_services(db, clock, rota_admins=frozenset({"u0admin"}))
    said = cover(services, by=ADMIN, until="01:30")
    assert holders(services, utc(2026, 10, 25, 1, 29)) == ["Sam Patel"]
    assert holders(services, utc(2026, 10, 25, 1, 30)) == ["Priya Shah"]
    # Which 01:30 is said, here and in the rota view: the hour happens twice tonight.
    assert (
        said == "Sam Patel now holds outreach until 01:30 GMT Sun 25 Oct (instead of Priya Shah)."
    )
    lines = rota_lines(services=services, at=clock.now())
    assert (
        next(line for line in lines if line.startswith("outreach:"))
        == "outreach: Sam Patel (cover) until 01:30 GMT Sun 25 Oct; then Priya Shah"
    )


def test_a_cover_over_the_next_persons_shift_names_them_in_the_confirmation(services):
    """09:00: "until 08:00" is tomorrow's 08:00, over Priya's night. A rota admin may do it,
    and is told so: the confirmation once named only Alex, and nobody knew Priya was off."""
    on_rota(services.db, "outreach", "Priya Shah", "U01PRIYA", utc(2026, 12, 1, 20))
    said = cover(services, by=ADMIN, until="08:00")
    assert said == (
        "Sam Patel now holds outreach until 08:00 Wed 02 Dec (instead of Alex Carter; "
        "then instead of Priya Shah from 20:00 Tue 01 Dec)."
    )
    assert holders(services, utc(2026, 12, 1, 22)) == ["Sam Patel"]
    with services.db.unit_of_work() as uow:
        event = uow.session.exec(select(ReviewEvent).where(ReviewEvent.kind == "cover")).one()
    assert json.loads(event.detail)["instead_of"] == ["Alex Carter", "Priya Shah"]


def told(services) -> dict[str, list[str]]:
    """The direct messages the cover queued, by the Slack user told."""
    sender = RecordingSender()
    outbox.drain(services, {"slack": sender})
    by_person: dict[str, list[str]] = {}
    for item in sender.sent:
        if item.kind == "direct":
            by_person.setdefault(item.address, []).append(item.message.text)
    return by_person


def test_the_holder_a_rota_admin_covers_is_told_who_holds_the_bleep_instead(services):
    """Alex, covered by an admin while busy, once went on thinking she held the bleep."""
    cover(services, by=ADMIN, until="12:30")
    assert told(services) == {
        "U01ALEX": [
            "Sam Patel holds outreach instead of you from 09:00 Tue 01 Dec until 12:30 Tue 01 "
            "Dec (recorded by Rota Admin)."
        ]
    }
    assert told(services) == {}  # once per cover


def test_the_holder_of_a_later_shift_the_cover_takes_over_is_told(services):
    """Priya, whose night a rota admin's "until 08:00" took, once still thought she held the
    bleep tonight."""
    on_rota(services.db, "outreach", "Priya Shah", "U01PRIYA", utc(2026, 12, 1, 20))
    cover(services, by=ADMIN, until="08:00")
    assert told(services)["U01PRIYA"] == [
        "Sam Patel holds outreach instead of you from 20:00 Tue 01 Dec until 08:00 Wed 02 Dec "
        "(recorded by Rota Admin)."
    ]


def test_whoever_records_the_cover_is_not_messaged_about_it_too(services):
    """Alex hands over and reads the confirmation; Sam's cover, replaced by an admin's, is
    news to Sam alone."""
    on_rota(services.db, "site-manager", "Jordan Lee", "U01JORDAN", utc(2026, 12, 1, 8))
    cover(services, by=ALEX)
    assert told(services) == {}
    cover(services, by=ADMIN, who="U01JORDAN", until="12:00")
    assert told(services) == {
        "U01SAM": [
            "Jordan Lee holds outreach instead of you from 09:00 Tue 01 Dec until 12:00 Tue 01 "
            "Dec (recorded by Rota Admin)."
        ]
    }


def test_a_displaced_holder_who_cannot_be_messaged_is_named_in_the_confirmation(services):
    with services.db.unit_of_work() as uow:
        alex = uow.rota.staff_by_platform_id("slack", "U01ALEX")
        assert alex is not None
        alex.slack_user_id = None  # on the rota by email alone
    said = cover(services, by=ADMIN, until="12:30")
    assert said.endswith("Alex Carter cannot be messaged: tell them yourself.")
