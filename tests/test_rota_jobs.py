"""Handover notices and cover-gap warnings: each goes out once, however often and however many
processes run the job."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reviews import outbox, service
from reviews.cover import record_cover
from reviews.removal import remove_from_rota
from reviews.rota_jobs import announce_handovers, warn_cover_gaps
from storage.database import Database
from tests.support.builders import (
    NURSE,
    RecordingSender,
    make_services,
    on_rota,
    request,
)
from tests.support.moments import utc
from tests.support.process import ROOT
from tests.support.together import at_once
from tests.test_rota_cover import ADMIN, cover

CHANNEL, DIGEST = "C0OUTREACH", "C0DIGEST"


def staff_all_roles_but_outreach(db) -> None:
    for role, name, user in (
        ("outreach-backup", "Sam Patel", "U01SAM"),
        ("icu-registrar", "Dr Fatima Malik", "U01FATIMA"),
        ("site-manager", "Rachel Hughes", "U01RACHEL"),
    ):
        on_rota(db, role, name, user, utc(2026, 11, 30, 0), hours=24 * 7)


@pytest.fixture
def day_and_night(db):
    """Alex holds outreach 08:00-20:00 on 1 Dec, Priya 20:00-08:00, then nobody."""
    staff_all_roles_but_outreach(db)
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", utc(2026, 12, 1, 8))
    on_rota(db, "outreach", "Priya Shah", "U01PRIYA", utc(2026, 12, 1, 20))


def delivered(services) -> RecordingSender:
    sender = RecordingSender()
    outbox.drain(services, {"slack": sender})
    return sender


def test_the_new_holder_is_told_what_is_open_and_the_channel_who_holds_it(db, clock, day_and_night):
    services = make_services(db, clock)
    raised = service.raise_review(services=services, request=request(), by=NURSE)
    delivered(services)  # the review's own card and pings
    clock.at = utc(2026, 12, 1, 20, 0, 40)
    assert announce_handovers(services) == 1
    assert announce_handovers(services) == 0
    clock.advance(minutes=1)
    assert announce_handovers(services) == 0
    sender = delivered(services)
    # The person first (the urgent lane), then the channel.
    assert [(i.kind, i.address) for i in sender.sent] == [
        ("direct", "U01PRIYA"),
        ("channel", CHANNEL),
    ]
    assert sender.sent[1].message.text == (
        "Handover: Priya Shah now holds outreach from Alex Carter until 08:00 Wed 02 Dec."
    )
    dm = sender.sent[0].message.text
    assert dm.startswith("You now hold outreach from Alex Carter until 08:00 Wed 02 Dec.\n")
    line = f"{raised.reference} · urgent · Ward 7 bed 12 · not yet acknowledged · raised 09:00"
    assert line in dm
    assert "9990000018" not in dm and "07700" not in dm


def test_no_change_no_notice_and_a_stale_handover_is_not_announced(db, clock, day_and_night):
    services = make_services(db, clock)
    clock.at = utc(2026, 12, 1, 12)  # Alex took over at 08:00, four hours ago
    assert announce_handovers(services) == 0
    clock.at = utc(2026, 12, 2, 8, 0, 30)  # Priya hands over to nobody: a gap, not a handover
    assert announce_handovers(services) == 0
    assert delivered(services).sent == []


def test_cover_is_a_handover_too(db, clock, day_and_night):
    services = make_services(db, clock, rota_admins=frozenset({"u0admin"}))
    record_cover(
        services=services,
        role="outreach",
        covering_platform="slack",
        covering_user_id="U01SAM",
        by=ADMIN,
        until_text="12:00",
    )
    assert announce_handovers(services) == 1
    clock.at = utc(2026, 12, 1, 12, 0, 30)
    assert announce_handovers(services) == 1  # and back to Alex at 12:00
    texts = [i.message.text for i in delivered(services).to(CHANNEL)]
    assert texts == [
        "Handover: Sam Patel now holds outreach from Alex Carter until 12:00 Tue 01 Dec.",
        "Handover: Alex Carter now holds outreach from Sam Patel until 20:00 Tue 01 Dec.",
    ]


def test_a_gap_in_the_next_24_hours_is_warned_once(db, clock, day_and_night):
    services = make_services(db, clock)
    assert warn_cover_gaps(services) == 1  # 09:00: nobody from 08:00 tomorrow
    assert warn_cover_gaps(services) == 0
    clock.advance(minutes=30)
    assert warn_cover_gaps(services) == 0
    clock.at = utc(2026, 12, 2, 9)  # inside the gap now: still the same gap
    assert warn_cover_gaps(services) == 0
    warnings = delivered(services).to(DIGEST)
    assert [w.message.text for w in warnings] == [
        "Rota gap: nobody holds outreach from 08:00 Wed 02 Dec until at least 09:00 Wed 02 Dec. "
        "Requests will skip that escalation level. Record cover with /rapidreview rota cover "
        "outreach @person until TIME."
    ]


def test_a_short_gap_between_shifts_is_warned_with_its_end(db, clock):
    staff_all_roles_but_outreach(db)
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", utc(2026, 12, 1, 8))
    on_rota(db, "outreach", "Priya Shah", "U01PRIYA", utc(2026, 12, 1, 20, 30), hours=24)
    services = make_services(db, clock)
    assert warn_cover_gaps(services) == 1
    text = delivered(services).to(DIGEST)[0].message.text
    assert text.startswith("Rota gap: nobody holds outreach from 20:00 Tue 01 Dec until 20:30 Tue")


def test_two_replicas_at_once_send_each_notice_once(database_url, clock):
    replicas = [Database(database_url) for _ in range(3)]
    try:
        staff_all_roles_but_outreach(replicas[0])
        on_rota(replicas[0], "outreach", "Alex Carter", "U01ALEX", utc(2026, 12, 1, 8))
        clock.at = utc(2026, 12, 1, 8, 0, 30)
        each = [make_services(db, clock) for db in replicas]
        handovers = at_once(*[lambda s=s: announce_handovers(s) for s in each])
        gaps = at_once(*[lambda s=s: warn_cover_gaps(s) for s in each])
        assert sorted(handovers) == [0, 0, 1] and sorted(gaps) == [0, 0, 1]
        sender = delivered(each[0])
        assert [(i.kind, i.address) for i in sender.sent] == [
            ("direct", "U01ALEX"),
            ("channel", CHANNEL),
            ("channel", DIGEST),
        ]
    finally:
        for db in replicas:
            db.dispose()


PROCESS = """
import sys
from datetime import datetime
from tests.support.clock import FrozenClock
from reviews.rota_jobs import announce_handovers, warn_cover_gaps
from storage.database import Database
from tests.support.builders import make_services
services = make_services(Database(sys.argv[1]), FrozenClock(datetime.fromisoformat(sys.argv[2])))
print(sum(announce_handovers(services) + warn_cover_gaps(services) for _ in range(20)))
"""


@pytest.mark.slow
def test_two_processes_at_once_send_each_notice_once(database_url, db, clock):
    staff_all_roles_but_outreach(db)
    on_rota(db, "outreach", "Alex Carter", "U01ALEX", utc(2026, 12, 1, 8))
    at = "2026-12-01T08:00:30+00:00"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS, database_url, at],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [err for _, err in outputs] == ["", ""]
    assert sorted(int(out) for out, _ in outputs) in ([0, 2], [1, 1])
    sender = delivered(make_services(db, clock))
    assert [(i.kind, i.address) for i in sender.sent] == [
        ("direct", "U01ALEX"),
        ("channel", CHANNEL),
        ("channel", DIGEST),
    ]


def test_a_gap_reopened_by_taking_the_covering_nurse_off_the_rota_is_warned_again(db, clock):
    """Nobody holds outreach after Priya's night: warned. Jordan covers the day; then goes home
    sick and a rota admin takes Jordan off the rota at 10:00. Nobody holds the bleep from
    10:00: a new gap, warned from 10:00 (its key once fell back on the 08:00 gap already
    warned and filled, and the channel heard nothing)."""
    staff_all_roles_but_outreach(db)
    on_rota(db, "outreach", "Priya Shah", "U01PRIYA", utc(2026, 11, 30, 20))
    on_rota(db, "outreach", "Jordan Lee", "U01JORDAN", utc(2026, 11, 23, 8))
    services = make_services(db, clock, rota_admins=frozenset({"u0admin"}))
    clock.at = utc(2026, 12, 1, 7)
    assert warn_cover_gaps(services) == 1  # from 08:00
    clock.at = utc(2026, 12, 1, 8, 30)
    cover(services, by=ADMIN, who="U01JORDAN", until="20:00")
    assert warn_cover_gaps(services) == 1  # from 20:00, when Jordan's cover ends
    clock.at = utc(2026, 12, 1, 10)
    remove_from_rota(services=services, platform="slack", user_id="U01JORDAN", by=ADMIN)
    assert warn_cover_gaps(services) == 1
    clock.advance(minutes=1)
    assert warn_cover_gaps(services) == 0  # and once
    assert (
        delivered(services)
        .to(DIGEST)[-1]
        .message.text.startswith(
            "Rota gap: nobody holds outreach from 10:00 Tue 01 Dec until at least 10:00 Wed 02 Dec."
        )
    )
