"""Importing rota files (CSV and iCalendar): all or nothing, idempotent, every bad row named."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlmodel import col, select

from rotas.importer import import_rota
from rotas.lookup import who_holds
from storage.tables import ReviewEvent, Shift, Staff
from tests.support.builders import a_years_rota, make_services
from tests.support.moments import utc

ROTA = Path(__file__).parent / "fixtures" / "rota"
HEADER = "role,name,email,slack_user_id,teams_user_id,start,end\n"


def holder(services, role: str, at: datetime) -> list[str]:
    with services.db.unit_of_work() as uow:
        return [person.name for person in who_holds(uow, role, at)]


def live_shifts(services) -> list[Shift]:
    with services.db.unit_of_work() as uow:
        query = select(Shift).where(col(Shift.superseded_at).is_(None))
        return list(uow.session.exec(query).all())


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_month_of_shifts_loads_and_says_who_is_on(db, clock):
    services = make_services(db, clock)
    report = import_rota(services=services, path=ROTA / "december-2026.csv")
    assert report.ok, report.lines()
    assert (len(report.added), len(report.changed), len(report.removed)) == (248, 0, 0)
    assert report.lines()[0] == (
        "Imported december-2026.csv: 248 added, 0 changed, 0 removed, 0 unchanged."
    )
    assert holder(services, "outreach", utc(2026, 12, 1, 9)) == ["Alex Carter"]
    assert holder(services, "outreach", utc(2026, 12, 1, 21)) == ["Priya Shah"]
    assert holder(services, "site-manager", utc(2026, 12, 31, 23)) == ["Mark Davies"]
    with db.unit_of_work() as uow:
        assert len(uow.rota.all_staff()) == 12


def test_the_same_file_twice_changes_nothing(db, clock):
    services = make_services(db, clock)
    import_rota(services=services, path=ROTA / "december-2026.csv")
    before = [(s.id, s.role, s.start, s.end) for s in live_shifts(services)]
    again = import_rota(services=services, path=ROTA / "december-2026.csv")
    assert again.ok
    assert again.lines()[:2] == [
        "Imported december-2026.csv: 0 added, 0 changed, 0 removed, 248 unchanged.",
        "Nothing changed: the rota already says this.",
    ]
    assert [(s.id, s.role, s.start, s.end) for s in live_shifts(services)] == before
    with db.unit_of_work() as uow:
        imports = uow.session.exec(select(ReviewEvent).where(ReviewEvent.kind == "rota_import"))
        assert len(imports.all()) == 1


def test_a_later_import_replaces_the_period_and_keeps_history(db, clock, tmp_path):
    services = make_services(db, clock)
    import_rota(services=services, path=ROTA / "autumn-2026.csv")
    corrected = write(
        tmp_path,
        "autumn-2026-v2.csv",
        HEADER
        + (
            "outreach,Alex Carter,alex.carter@nhs.net,U01ALEX,,2026-10-24T08:00,2026-10-24T20:00\n"
            "outreach,Sam Patel,sam.patel@nhs.net,U01SAM,,2026-10-24T20:00,2026-10-25T08:00\n"
        ),
    )
    report = import_rota(services=services, path=corrected)
    assert report.ok
    assert report.changed == [
        "outreach 20:00 Sat 24 Oct - 08:00 Sun 25 Oct: Priya Shah -> Sam Patel"
    ]
    assert report.removed == []  # Tom's shift of the 25th lies outside the new file's period
    assert holder(services, "outreach", utc(2026, 10, 25, 1)) == ["Sam Patel"]
    assert holder(services, "outreach", utc(2026, 10, 25, 9)) == ["Tom Bennett"]
    with db.unit_of_work() as uow:
        history = uow.session.exec(select(Shift).where(col(Shift.superseded_at).is_not(None)))
        kept = [(uow.rota.staff(s.staff_id).name, s.source) for s in history.all()]
    assert kept == [("Priya Shah", "autumn-2026.csv")]


def test_a_shift_left_out_of_a_later_import_is_removed(db, clock, tmp_path):
    services = make_services(db, clock)
    import_rota(services=services, path=ROTA / "autumn-2026.csv")
    shorter = write(
        tmp_path,
        "autumn-short.csv",
        HEADER
        + (
            "outreach,Alex Carter,alex.carter@nhs.net,U01ALEX,,2026-10-24T08:00,2026-10-24T20:00\n"
            "outreach,Tom Bennett,tom.bennett@nhs.net,U01TOM,,2026-10-25T08:00,2026-10-25T20:00\n"
        ),
    )
    report = import_rota(services=services, path=shorter)
    assert report.removed == ["outreach 20:00 Sat 24 Oct - 08:00 Sun 25 Oct: Priya Shah"]
    assert holder(services, "outreach", utc(2026, 10, 25, 1)) == []


def test_a_wrong_header_rejects_the_file(db, clock):
    services = make_services(db, clock)
    report = import_rota(services=services, path=ROTA / "wrong-header.csv")
    assert not report.ok
    assert report.lines()[0] == "Nothing imported from wrong-header.csv: 1 problem."
    assert report.lines()[1].startswith(
        "line 1: wrong header: expected role,name,email,slack_user_id,teams_user_id,start,end"
    )
    assert live_shifts(services) == []


def test_every_bad_row_is_named_and_nothing_is_imported(db, clock):
    services = make_services(db, clock)
    report = import_rota(services=services, path=ROTA / "bad-rows.csv")
    assert not report.ok
    assert [(r.line, r.reason.split(":")[0]) for r in report.rejected] == [
        (3, "unknown role format 'Outreach Nurse'"),
        (4, "end before start"),
        (5, "duplicate row"),
        (6, "unknown person"),
        (7, "bad times"),
    ]
    assert "line 6: unknown person: Dr Nobody Known has not been on the rota before" in "\n".join(
        report.lines()
    )
    assert live_shifts(services) == []
    with db.unit_of_work() as uow:
        assert uow.rota.all_staff() == []  # the good row's person was not kept either


def test_an_ics_export_maps_categories_summary_and_attendees(db, clock, tmp_path):
    services = make_services(db, clock)
    first = import_rota(services=services, path=ROTA / "first-week-december-2026.ics")
    assert not first.ok
    assert [r.line for r in first.rejected] == [22]  # Sam Patel: a name the directory lacks
    assert "unknown person: Sam Patel" in first.rejected[0].reason
    sam = write(
        tmp_path,
        "sam.csv",
        HEADER
        + (
            "outreach-backup,Sam Patel,sam.patel@nhs.net,U01SAM,,"
            "2026-11-30T08:00,2026-11-30T20:00\n"
        ),
    )
    assert import_rota(services=services, path=sam).ok
    report = import_rota(services=services, path=ROTA / "first-week-december-2026.ics")
    assert report.ok, report.lines()
    assert len(report.added) == 4
    assert holder(services, "outreach", utc(2026, 12, 1, 9)) == ["Alex Carter"]
    assert holder(services, "outreach", utc(2026, 12, 2, 7)) == ["Priya Shah"]
    assert holder(services, "outreach-backup", utc(2026, 12, 1, 19)) == ["Sam Patel"]
    assert holder(services, "icu-registrar", utc(2026, 12, 2, 7)) == ["Dr Fatima Malik"]
    with db.unit_of_work() as uow:
        assert uow.rota.staff_by_email("alex.carter@nhs.net").name == "Alex Carter"
    assert import_rota(services=services, path=ROTA / "first-week-december-2026.ics").unchanged == 4


def test_bad_ics_events_are_named_by_the_line_they_begin_on(db, clock):
    services = make_services(db, clock)
    report = import_rota(services=services, path=ROTA / "bad-events.ics")
    assert [(r.line, r.reason.split(":")[0]) for r in report.rejected] == [
        (12, "unknown role format"),
        (19, "end before start"),
        (27, "duplicate row"),
        (35, "unknown person"),
    ]
    assert live_shifts(services) == []


def test_an_event_begun_in_any_letter_case_is_read_not_dropped(db, clock, tmp_path):
    """iCalendar's names are case-insensitive. An event begun "Begin:VEvent" was once left out
    of the count of events, and the last event of the file was dropped without a word: the
    coordinator's night cover never replaced the shift it was meant to."""
    services = make_services(db, clock)
    people = HEADER + (
        "outreach,Alex Carter,alex.carter@nhs.net,U01ALEX,,2026-11-30T08:00,2026-11-30T20:00\n"
        "outreach,Priya Shah,priya.shah@nhs.net,U01PRIYA,,2026-11-30T20:00,2026-12-01T08:00\n"
    )
    assert import_rota(services=services, path=write(tmp_path, "people.csv", people)).ok

    def event(begin: str, name: str, email: str, start: str, end: str) -> str:
        return (
            f"{begin}\nUID:{start}@example.nhs.uk\nDTSTAMP:20261115T090000Z\n"
            f"SUMMARY:outreach: {name}\nATTENDEE;CN={name}:mailto:{email}\n"
            f"DTSTART;TZID=Europe/London:{start}\nDTEND;TZID=Europe/London:{end}\nEND:VEVENT\n"
        )

    calendar = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Example NHS Trust//Rostering export//EN\n"
        + event(
            "Begin:VEvent",
            "Alex Carter",
            "alex.carter@nhs.net",
            "20261201T080000",
            "20261201T200000",
        )
        + event(
            "BEGIN:VEVENT", "Priya Shah", "priya.shah@nhs.net", "20261201T200000", "20261202T080000"
        )
        + "END:VCALENDAR\n"
    )
    report = import_rota(services=services, path=write(tmp_path, "december.ics", calendar))
    assert report.ok and len(report.added) == 2, report.lines()
    assert holder(services, "outreach", utc(2026, 12, 1, 23)) == ["Priya Shah"]


def test_a_days_duration_across_the_clock_change_ends_at_the_same_time_of_day(db, clock, tmp_path):
    """DURATION:P1D from 20:00 on the Saturday the clocks go back ends at 20:00 on the Sunday,
    25 hours later (RFC 5545: a day of a duration is a calendar day). Read as 24 hours, the
    shift ended at 19:00 and the next holder was called an hour before their shift began."""
    services = make_services(db, clock)
    calendar = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:1\r\n"
        "SUMMARY:outreach: Alex Carter\r\nATTENDEE;CN=Alex Carter:mailto:alex.carter@nhs.net\r\n"
        "DTSTART;TZID=Europe/London:20261024T200000\r\nDURATION:P1D\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:2\r\n"
        "SUMMARY:outreach: Priya Shah\r\nATTENDEE;CN=Priya Shah:mailto:priya.shah@nhs.net\r\n"
        "DTSTART;TZID=Europe/London:20261025T200000\r\nDURATION:PT12H\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    report = import_rota(services=services, path=write(tmp_path, "autumn.ics", calendar))
    assert report.ok and len(report.added) == 2, report.lines()
    # 19:30 GMT on Sunday 25 October: still Alex's, as the rota meant, not nobody's.
    assert holder(services, "outreach", utc(2026, 10, 25, 19, 30)) == ["Alex Carter"]
    assert holder(services, "outreach", utc(2026, 10, 25, 20, 30)) == ["Priya Shah"]


def test_a_file_that_is_not_a_rota_is_refused(db, clock, tmp_path):
    services = make_services(db, clock)
    report = import_rota(services=services, path=write(tmp_path, "rota.xlsx", "x"))
    assert report.lines() == [
        "Nothing imported from rota.xlsx: 1 problem.",
        "rota.xlsx: not a rota file; give a .csv or .ics file",
    ]
    assert not import_rota(services=services, path=write(tmp_path, "cal.ics", "hello")).ok


def test_a_csv_excel_saved_in_windows_encoding_says_how_to_save_it(db, clock, tmp_path):
    services = make_services(db, clock)
    rota = tmp_path / "rota.csv"
    rota.write_bytes(
        "role,name,email,slack_user_id,teams_user_id,start,end\n"
        "outreach,Zo\u00eb Price,zoe.price@nhs.net,,,2026-12-01T08:00,2026-12-01T20:00\n".encode(
            "cp1252"
        )
    )
    assert import_rota(services=services, path=rota).lines() == [
        "Nothing imported from rota.csv: 1 problem.",
        'line 2: rota.csv is not UTF-8 text; in Excel, save it as "CSV UTF-8 (Comma delimited)"',
    ]
    assert live_shifts(services) == []


@pytest.mark.parametrize("ending", ["\r\n", "\r"])
def test_any_line_ending_a_spreadsheet_saves_is_read(db, clock, tmp_path, ending):
    services = make_services(db, clock)
    rota = tmp_path / "rota.csv"
    lines = [
        "role,name,email,slack_user_id,teams_user_id,start,end",
        "outreach,Zoe Price,zoe.price@nhs.net,U0ZOE,,2026-12-01T08:00,2026-12-01T20:00",
        'outreach-backup,"Sam\rPatel",sam.patel@nhs.net,U0SAM,,2026-12-01T08:00,2026-12-01T20:00',
    ]
    rota.write_bytes(ending.join(lines).encode())
    report = import_rota(services=services, path=rota)
    assert report.ok, report.lines()
    assert len(live_shifts(services)) == 2


def test_slack_ids_missing_from_the_file_are_looked_up_by_email(db, clock):
    services = make_services(db, clock)
    asked: list[str] = []

    def slack_knows(email: str) -> str | None:
        asked.append(email)
        return {"grace.okafor@nhs.net": "U01GRACE"}.get(email)

    report = import_rota(
        services=services, path=ROTA / "december-2026.csv", lookup_slack_id=slack_knows
    )
    assert report.ok
    assert asked == ["grace.okafor@nhs.net"]  # everyone else came with a Slack id
    printed = "\n".join(report.lines())
    assert "added to the staff directory: Grace Okafor (Slack id found by email)" in printed
    assert "outreach: 62 shifts, 08:00 Tue 01 Dec to 08:00 Fri 01 Jan" in printed
    with db.unit_of_work() as uow:
        assert uow.rota.staff_by_platform_id("slack", "U01GRACE").name == "Grace Okafor"
    asked.clear()
    again = import_rota(
        services=services, path=ROTA / "december-2026.csv", lookup_slack_id=slack_knows
    )
    assert again.changes == 0 and asked == []  # known now: Slack is not asked again


def test_a_person_slack_does_not_know_is_reported_by_name(db, clock):
    services = make_services(db, clock)
    report = import_rota(
        services=services, path=ROTA / "december-2026.csv", lookup_slack_id=lambda email: None
    )
    assert not report.ok
    reasons = {r.reason for r in report.rejected}
    assert reasons == {
        "unknown person: Slack does not know Grace Okafor by grace.okafor@nhs.net; check the "
        "email or give their slack_user_id"
    }
    with db.unit_of_work() as uow:
        assert uow.rota.staff_by_email("grace.okafor@nhs.net") is None


def test_slack_unreachable_imports_nothing(db, clock):
    services = make_services(db, clock)

    def slack_down(email: str) -> str | None:
        raise ConnectionError("connection refused")

    report = import_rota(
        services=services, path=ROTA / "december-2026.csv", lookup_slack_id=slack_down
    )
    assert report.lines() == [
        "Nothing imported from december-2026.csv: 1 problem.",
        "could not ask Slack for user ids (connection refused)",
    ]
    assert live_shifts(services) == []


def test_lookup_by_email_through_the_fake_slack_server(db, clock):
    from slack_sdk import WebClient

    from handlers.slack import lookup_slack_id
    from tests.support.fake_slack import FakeSlack

    services = make_services(db, clock)
    with FakeSlack() as slack:
        slack.add_user("U01GRACE", "Grace Okafor", "grace.okafor@nhs.net")
        client = WebClient(token="xoxb-test", base_url=slack.url)
        report = import_rota(
            services=services,
            path=ROTA / "december-2026.csv",
            lookup_slack_id=lookup_slack_id(client),
        )
        asked = [call.body.get("email") for call in slack.called("users.lookupByEmail")]
    assert report.ok, report.lines()
    assert asked == ["grace.okafor@nhs.net"]
    with db.unit_of_work() as uow:
        assert uow.rota.staff_by_email("grace.okafor@nhs.net").slack_user_id == "U01GRACE"


@pytest.mark.parametrize("name", ["autumn-2026.csv", "spring-2027.csv"])
def test_night_shifts_spanning_a_clock_change_hold_to_the_minute(db, clock, name):
    services = make_services(db, clock)
    assert import_rota(services=services, path=ROTA / name).ok
    night = [s for s in live_shifts(services) if s.start.astimezone(UTC).hour in (19, 20)][0]
    hours = (night.end - night.start).total_seconds() / 3600
    assert hours == (13 if name.startswith("autumn") else 11)
    assert holder(services, "outreach", night.start) == ["Priya Shah"]
    assert holder(services, "outreach", night.end) == ["Tom Bennett"]
    with db.unit_of_work() as uow:
        assert uow.rota.staff(night.staff_id).name == "Priya Shah"


def test_a_non_existent_local_time_follows_the_rule_and_leaves_no_gap(db, clock):
    services = make_services(db, clock)
    report = import_rota(services=services, path=ROTA / "clock-change-hours.csv")
    assert report.ok
    notes = "\n".join(report.lines())
    assert "line 2: 2027-03-28 01:30 does not exist in Europe/London" in notes
    assert "read as 02:30 BST" in notes
    assert "line 4: 2026-10-25 01:30 happens twice in Europe/London" in notes
    # 01:30 in March is 01:30 UTC (02:30 BST); in October the first 01:30, 00:30 UTC.
    assert holder(services, "icu-registrar", utc(2027, 3, 28, 1, 29)) == ["Dr Fatima Malik"]
    assert holder(services, "icu-registrar", utc(2027, 3, 28, 1, 30)) == ["Dr James Wright"]
    assert holder(services, "site-manager", utc(2026, 10, 25, 0, 29)) == ["Rachel Hughes"]
    assert holder(services, "site-manager", utc(2026, 10, 25, 0, 30)) == ["Mark Davies"]
    with db.unit_of_work() as uow:
        staff = {p.name: p for p in uow.rota.all_staff()}
    assert isinstance(staff["Mark Davies"], Staff)


def test_a_teams_object_id_typed_in_upper_case_is_kept_as_teams_sends_it(db, clock, tmp_path):
    services = make_services(db, clock)
    rota = write(
        tmp_path,
        "rota.csv",
        HEADER + "outreach,Grace Okafor,,U01GRACE,9ACE9ACE-0000-4000-8000-000000000005,"
        "2026-12-01T08:00,2026-12-01T20:00\n",
    )
    assert import_rota(services=services, path=rota).ok
    with db.unit_of_work() as uow:
        [grace] = uow.rota.all_staff()
    # Teams sends object ids in lower case; Slack's ids are upper case by design.
    assert grace.teams_user_id == "9ace9ace-0000-4000-8000-000000000005"
    assert grace.slack_user_id == "U01GRACE"


def test_a_role_with_one_shift_is_counted_in_the_singular(db, clock, tmp_path):
    one = write(
        tmp_path,
        "one.csv",
        HEADER
        + "outreach,Alex Carter,alex.carter@nhs.net,U01ALEX,,2026-12-01T08:00,2026-12-01T20:00\n",
    )
    printed = "\n".join(import_rota(services=make_services(db, clock), path=one).lines())
    assert "outreach: 1 shift, 08:00 Tue 01 Dec to 20:00 Tue 01 Dec" in printed


def test_a_name_alone_never_puts_a_stranger_who_messaged_the_bot_on_call(db, clock, tmp_path):
    """A porter called Sam Patel messaged the bot once (Teams and Slack add everyone who does
    to the directory). A row naming only "Sam Patel" handed him the outreach shift, its pings
    and its Acknowledge button."""
    services = make_services(db, clock)
    with db.unit_of_work() as uow:
        uow.rota.add_staff(Staff(name="Sam Patel", teams_user_id="5a5a5a5a-0000-4000-8000-0009"))
    name_only = HEADER + "outreach,Sam Patel,,,,2026-12-01T08:00,2026-12-01T20:00\n"
    report = import_rota(services=services, path=write(tmp_path, "a.csv", name_only))
    assert [(r.line, r.reason) for r in report.rejected] == [
        (
            2,
            "unknown person: Sam Patel has not been on the rota before; give their email, "
            "slack_user_id or teams_user_id",
        )
    ]
    assert live_shifts(services) == []
    # Once a rota has named the nurse Sam Patel by email, her name alone finds her, in the same
    # file and in later ones; the porter, never on a rota, is not mistaken for her.
    with_email = (
        HEADER
        + "outreach,Sam Patel,sam.patel@nhs.net,U01SAM,,2026-12-01T08:00,2026-12-01T20:00\n"
        + "outreach-backup,Sam Patel,,,,2026-12-01T20:00,2026-12-02T08:00\n"
    )
    report = import_rota(services=services, path=write(tmp_path, "b.csv", with_email))
    assert report.ok, report.lines()
    assert holder(services, "outreach-backup", utc(2026, 12, 1, 21)) == ["Sam Patel"]
    with db.unit_of_work() as uow:
        (nurse,) = uow.rota.rostered(uow.rota.staff_by_name("Sam Patel"))
        assert nurse.email == "sam.patel@nhs.net"
        backup = who_holds(uow, "outreach-backup", utc(2026, 12, 1, 21))
        assert [person.id for person in backup] == [nurse.id]


def test_a_file_replaces_only_its_own_period_of_a_shift_that_runs_past_it(db, clock, tmp_path):
    """November's night, 20:00 on the 30th to 08:00, overlaps December's file (from 07:00 on
    the 1st) by one hour. The whole night was replaced: nobody held the bleep from 20:00."""
    services = make_services(db, clock)
    november = HEADER + (
        "outreach,Priya Shah,priya.shah@nhs.net,U01PRIYA,,2026-11-30T08:00,2026-11-30T20:00\n"
        "outreach,Alex Carter,alex.carter@nhs.net,U01ALEX,,2026-11-30T20:00,2026-12-01T08:00\n"
        "outreach,Priya Shah,priya.shah@nhs.net,U01PRIYA,,2026-12-02T06:00,2026-12-02T18:00\n"
    )
    assert import_rota(services=services, path=write(tmp_path, "nov.csv", november)).ok
    december = write(
        tmp_path,
        "dec.csv",
        HEADER
        + "outreach,Sam Patel,sam.patel@nhs.net,U01SAM,,2026-12-01T07:00,2026-12-01T19:00\n"
        + "outreach,Priya Shah,priya.shah@nhs.net,U01PRIYA,,2026-12-01T19:00,2026-12-02T07:00\n",
    )
    report = import_rota(services=services, path=december)
    assert report.ok, report.lines()
    assert holder(services, "outreach", utc(2026, 11, 30, 23)) == ["Alex Carter"]
    assert holder(services, "outreach", utc(2026, 12, 1, 7, 30)) == ["Sam Patel"]
    assert holder(services, "outreach", utc(2026, 12, 2, 6, 30)) == ["Priya Shah"]  # December's
    assert holder(services, "outreach", utc(2026, 12, 2, 12)) == ["Priya Shah"]  # November's
    assert report.changed == [
        "outreach 20:00 Mon 30 Nov - 08:00 Tue 01 Dec: Alex Carter now only 20:00 Mon 30 Nov - "
        "07:00 Tue 01 Dec, outside this file's period",
        "outreach 06:00 Wed 02 Dec - 18:00 Wed 02 Dec: Priya Shah now only 07:00 Wed 02 Dec - "
        "18:00 Wed 02 Dec, outside this file's period",
    ]
    assert report.removed == []
    again = import_rota(services=services, path=december)
    assert again.ok and not again.changes


def test_an_email_that_cannot_be_one_is_rejected_and_changes_nobody(db, clock, tmp_path):
    """ "not-an-email" replaced Alex's address in the staff directory; her next, correct, row then
    made a second Alex Carter."""
    services = make_services(db, clock)
    good = (
        HEADER
        + "outreach,Alex Carter,alex.carter@nhs.net,U01ALEX,,2026-12-01T08:00,2026-12-01T20:00\n"
    )
    assert import_rota(services=services, path=write(tmp_path, "a.csv", good)).ok
    bad = HEADER + "outreach,Alex Carter,not-an-email,U01ALEX,,2026-12-02T08:00,2026-12-02T20:00\n"
    report = import_rota(services=services, path=write(tmp_path, "b.csv", bad))
    assert [(r.line, r.reason) for r in report.rejected] == [
        (2, "not an email address: 'not-an-email' (e.g. alex.carter@nhs.net)")
    ]
    ics = write(
        tmp_path,
        "c.ics",
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:1\r\n"
        "SUMMARY:outreach: Alex Carter\r\nATTENDEE;CN=Alex Carter:mailto:alex carter@nhs\r\n"
        "DTSTART:20261203T080000\r\nDTEND:20261203T200000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )
    assert "not an email address: 'alex carter@nhs'" in "\n".join(
        import_rota(services=services, path=ics).lines()
    )
    with db.unit_of_work() as uow:
        assert [(p.name, p.email) for p in uow.rota.all_staff()] == [
            ("Alex Carter", "alex.carter@nhs.net")
        ]


def test_an_outlook_calendar_with_windows_time_zone_names_is_read(db, clock, tmp_path):
    """Outlook names zones as Windows does; every Outlook rota was refused as "unknown time
    zone 'GMT Standard Time'". In July, 08:00 London time is 07:00 UTC."""
    services = make_services(db, clock)
    outlook = write(
        tmp_path,
        "outlook.ics",
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:Microsoft Exchange Server 2010\r\n"
        "BEGIN:VEVENT\r\nUID:1\r\nSUMMARY:outreach: Alex Carter\r\n"
        "ATTENDEE;CN=Alex Carter:mailto:alex.carter@nhs.net\r\n"
        "DTSTART;TZID=GMT Standard Time:20270701T080000\r\n"
        "DTEND;TZID=GMT Standard Time:20270701T200000\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:2\r\nSUMMARY:outreach: Alex Carter\r\n"
        "ATTENDEE;CN=Alex Carter:mailto:alex.carter@nhs.net\r\n"
        'DTSTART;TZID="(UTC+00:00) Dublin, Edinburgh, Lisbon, London":20270702T080000\r\n'
        'DTEND;TZID="(UTC+00:00) Dublin, Edinburgh, Lisbon, London":20270702T200000\r\n'
        "END:VEVENT\r\nEND:VCALENDAR\r\n",
    )
    with db.unit_of_work() as uow:
        uow.rota.add_staff(
            Staff(name="Alex Carter", email="alex.carter@nhs.net", slack_user_id="U01ALEX")
        )
    report = import_rota(services=services, path=outlook)
    assert report.ok, report.lines()
    assert holder(services, "outreach", utc(2027, 7, 1, 7)) == ["Alex Carter"]
    assert holder(services, "outreach", utc(2027, 7, 1, 6, 59)) == []
    assert holder(services, "outreach", utc(2027, 7, 2, 7)) == ["Alex Carter"]
    for wrong in ("Atlantis Time", "Europe"):  # "Europe" is a folder of zones: a traceback
        bad = write(tmp_path, "x.ics", outlook.read_text().replace("GMT Standard Time", wrong))
        assert f"unknown time zone '{wrong}'" in "\n".join(
            import_rota(services=services, path=bad).lines()
        )


def test_a_years_rota_for_a_whole_trust_asks_the_database_about_once_a_row(db, clock, tmp_path):
    # Each row asked the database for its person three times, and every row was compared with
    # every other: a year of 40 roles (29,200 rows) took half a minute, with SQLite's lock held
    # for most of it, so the bot could not escalate meanwhile. The times are measured by
    # `bench/rota_import.py`; here, what they came from: a statement a row (its insert), and
    # each person looked up once.
    services = make_services(db, clock)
    path = write(tmp_path, "trust-2027.csv", a_years_rota(10))
    statements = []

    def count(*args: object) -> None:
        statements.append(args[2])  # the SQL

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        report = import_rota(services=services, path=path)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert report.ok, report.lines()[:5]
    assert report.lines()[0].startswith("Imported trust-2027.csv: 7300 added")
    assert len(statements) < 7300 * 1.1, f"{len(statements)} statements for 7,300 rows"
    assert holder(services, "role-9", utc(2027, 12, 31, 21)) == ["Person 29"]
