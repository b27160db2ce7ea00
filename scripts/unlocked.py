"""Prints each requirement of the installed rapidreview (with `extra`) that the environment does
not satisfy: a dependency added to pyproject.toml since scripts/lock last ran. Exit 1 if any."""

from __future__ import annotations

import sys
from importlib import metadata

from pip._vendor.packaging.requirements import Requirement


def unmet(extra: str) -> list[str]:
    missing = []
    for line in metadata.requires("rapidreview") or []:
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(str(requirement))
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            missing.append(f"{requirement} (installed {installed})")
    return missing


if __name__ == "__main__":
    missing = unmet(sys.argv[1] if len(sys.argv) > 1 else "")
    print("\n".join(missing))
    sys.exit(1 if missing else 0)
