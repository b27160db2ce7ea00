"""`python bot.py teams package`: the zip a trust uploads to Teams."""

from __future__ import annotations

import json
import re
import struct
import zipfile
from pathlib import Path

import pytest

import bot
from handlers.teams.package import PackageError, build_package
from settings import Settings
from tests.support.fake_microsoft import APP_ID

# The required properties of the v1.22 app manifest schema (and of every 1.x before it).
REQUIRED = {
    "manifestVersion",
    "version",
    "id",
    "developer",
    "name",
    "description",
    "icons",
    "accentColor",
}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_package_holds_a_valid_manifest_and_both_icons(tmp_path: Path) -> None:
    out = build_package(Settings(teams_app_id=APP_ID), tmp_path / "rapidreview.zip")
    with zipfile.ZipFile(out) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(package.read("manifest.json"))
        icons = {name: png_size(package.read(name)) for name in ("color.png", "outline.png")}

    assert REQUIRED <= manifest.keys()
    assert re.fullmatch(
        r"https://developer\.microsoft\.com/json-schemas/teams/v1\.\d+/"
        r"MicrosoftTeams\.schema\.json",
        manifest["$schema"],
    )
    assert manifest["$schema"].endswith(
        f"v{manifest['manifestVersion']}/MicrosoftTeams.schema.json"
    )
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    assert manifest["id"] == APP_ID
    developer = manifest["developer"]
    for url in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        assert developer[url].startswith("https://")
    assert developer["name"]
    assert 0 < len(manifest["name"]["short"]) <= 30 and len(manifest["name"]["full"]) <= 100
    assert 0 < len(manifest["description"]["short"]) <= 80
    assert 0 < len(manifest["description"]["full"]) <= 4000
    assert re.fullmatch(r"#[0-9A-Fa-f]{6}", manifest["accentColor"])
    assert icons == {"color.png": (192, 192), "outline.png": (32, 32)}
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}

    [teams_bot] = manifest["bots"]
    assert teams_bot["botId"] == APP_ID
    assert {"personal", "team"} <= set(teams_bot["scopes"])
    [commands] = teams_bot["commandLists"]
    assert [c["title"] for c in commands["commands"]] == [
        "rapidreview",
        "checkin",
        "help",
        "rota",
        "open",
    ]
    assert isinstance(manifest["validDomains"], list)


def test_the_command_line_builds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "TEAMS_APP_ID": APP_ID,
        "TEAMS_APP_PASSWORD": "secret",
        "TEAMS_TENANT_ID": "11111111-2222-4333-8444-555555555555",
        "TEAMS_OUTREACH_CONVERSATION": "19:outreach@thread.tacv2",
    }.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "teams.zip"
    assert bot.main(["teams", "package", "--out", str(out)]) == 0
    assert zipfile.is_zipfile(out) and f"Wrote {out}" in capsys.readouterr().out

    monkeypatch.setenv("TEAMS_APP_ID", "my-bot")
    assert bot.main(["teams", "package", "--out", str(tmp_path / "bad.zip")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("rapidreview: TEAMS_APP_ID:") and "\n" not in error
    assert "secret" not in error


def test_no_package_without_an_app_id(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="TEAMS_APP_ID"):
        build_package(Settings(), tmp_path / "x.zip")
