"""The Teams app package: manifest.json and the two icons (from app_package/ beside this
file), zipped.

A trust uploads the zip in Teams (Apps > Manage your apps > Upload an app) or through the
Teams admin centre. The template's {{TEAMS_APP_ID}} becomes the Azure bot's app id.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from settings import GUID, Settings

SOURCES = Path(__file__).resolve().parent / "app_package"
ICONS = ("color.png", "outline.png")


class PackageError(ValueError):
    """The package cannot be built; the message says which setting or file to fix."""


def manifest(settings: Settings, sources: Path = SOURCES) -> dict[str, Any]:
    """The manifest for this bot: the template with TEAMS_APP_ID filled in."""
    if not GUID.fullmatch(settings.teams_app_id):
        raise PackageError(
            "TEAMS_APP_ID: must be the Azure bot's Microsoft App ID (a GUID) to build the package"
        )
    template = (sources / "manifest.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(template.replace("{{TEAMS_APP_ID}}", settings.teams_app_id))
    return data


def build_package(settings: Settings, out: Path) -> Path:
    """Write the zip to `out` and return its path; PackageError when TEAMS_APP_ID is not set."""
    data = manifest(settings)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
        # Teams wants the files at the zip's root, not in a folder.
        package.writestr("manifest.json", json.dumps(data, indent=2))
        for icon in ICONS:
            package.write(SOURCES / icon, icon)
    return out
