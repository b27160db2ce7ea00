"""The rota's mobile and pager columns: normalised on import, shown masked, a bad one named."""

from __future__ import annotations

from pathlib import Path

import pytest

from rotas.contact import uk_mobile
from rotas.importer import import_rota
from tests.support.builders import make_services

HEADER = "role,name,email,slack_user_id,teams_user_id,start,end"
ALEX = "outreach,Alex Carter,alex.carter@nhs.net,U01ALEX,,2026-12-01T08:00,2026-12-01T20:00"
SAM = "outreach-backup,Sam Patel,sam.patel@nhs.net,U01SAM,,2026-12-01T08:00,2026-12-01T20:00"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rota.csv"
    path.write_text(text, encoding="utf-8")
    return path


def staff(services) -> dict[str, tuple[str | None, str | None]]:
    with services.db.unit_of_work() as uow:
        return {p.name: (p.mobile, p.pager) for p in uow.rota.all_staff()}


@pytest.mark.parametrize(
    "written",
    ["07700 900123", "07700900123", "+44 7700 900123", "0044 7700-900-123", "447700900123"],
)
def test_a_uk_mobile_is_stored_as_plus_44(written):
    assert uk_mobile(written) == "+447700900123"


def test_mobile_and_pager_columns_reach_the_directory_and_the_report_masks_them(
    db, clock, tmp_path
):
    services = make_services(db, clock)
    rota = write(
        tmp_path,
        f"{HEADER},mobile,pager\n{ALEX},07700 900123,BLEEP-2345\n{SAM},+44 7700 900456,\n",
    )
    report = import_rota(services=services, path=rota)
    assert report.ok, report.lines()
    assert staff(services) == {
        "Alex Carter": ("+447700900123", "BLEEP-2345"),
        "Sam Patel": ("+447700900456", None),
    }
    lines = "\n".join(report.lines())
    assert "added to the staff directory: Alex Carter, mobile ending 123, pager ending 345" in lines
    assert "added to the staff directory: Sam Patel, mobile ending 456" in lines
    for whole in ("900123", "7700", "BLEEP", "900456"):
        assert whole not in lines


def test_a_changed_mobile_is_updated_and_reported_masked(db, clock, tmp_path):
    services = make_services(db, clock)
    import_rota(services=services, path=write(tmp_path, f"{HEADER},mobile\n{ALEX},07700900123\n"))
    report = import_rota(
        services=services, path=write(tmp_path, f"{HEADER},mobile\n{ALEX},07700 900789\n")
    )
    assert "updated in the staff directory: Alex Carter (mobile ending 789)" in report.lines()
    assert staff(services)["Alex Carter"] == ("+447700900789", None)


def test_the_columns_may_come_in_either_order_or_not_at_all(db, clock, tmp_path):
    services = make_services(db, clock)
    rota = write(tmp_path, f"{HEADER},pager,mobile\n{ALEX},BLEEP-2345,07700 900123\n")
    assert import_rota(services=services, path=rota).ok
    assert staff(services)["Alex Carter"] == ("+447700900123", "BLEEP-2345")
    # A file without the columns leaves what the directory knows alone.
    assert import_rota(services=services, path=write(tmp_path, f"{HEADER}\n{SAM}\n")).ok
    assert staff(services)["Alex Carter"] == ("+447700900123", "BLEEP-2345")


def test_a_bad_mobile_rejects_the_file_with_its_line_and_no_number(db, clock, tmp_path):
    services = make_services(db, clock)
    rota = write(
        tmp_path,
        f"{HEADER},mobile,pager\n{ALEX},07700 900123,\n{SAM},0161 496 0000,\n"
        f"{SAM.replace('08:00', '20:00').replace('T20:00', 'T23:00')},,bleep 12\n",
    )
    report = import_rota(services=services, path=rota)
    assert not report.ok
    assert report.lines() == [
        "Nothing imported from rota.csv: 2 problems.",
        "line 3: bad mobile ending 000: give a UK mobile number, 07 and 9 more digits, "
        "e.g. 07700 900123",
        "line 4: bad pager ending p12: a pager id is up to 50 letters, digits and . _ + @ : -",
    ]
    assert staff(services) == {}


def test_an_unknown_extra_column_is_a_wrong_header(db, clock, tmp_path):
    services = make_services(db, clock)
    report = import_rota(services=services, path=write(tmp_path, f"{HEADER},phone\n{ALEX},1\n"))
    assert report.lines()[1].startswith("line 1: wrong header: expected " + HEADER)
    assert "(then optionally mobile,pager)" in report.lines()[1]
