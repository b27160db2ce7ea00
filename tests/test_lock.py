"""The lock files scripts/setup installs from: every pin hashed, no test tool in production,
and dev at production's versions."""

from __future__ import annotations

import re
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements"
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+) \\$")


def pins(name: str) -> dict[str, tuple[str, int]]:
    """package -> (version, how many hashes)."""
    found: dict[str, tuple[str, int]] = {}
    current = ""
    for line in (REQUIREMENTS / name).read_text().splitlines():
        if match := PIN.match(line):
            current = match[1].lower()
            found[current] = (match[2], 0)
        elif line.strip().startswith("--hash=sha256:"):
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
    return found


def test_every_pin_carries_hashes() -> None:
    for name in ("production.txt", "dev.txt"):
        unhashed = [package for package, (_, hashes) in pins(name).items() if not hashes]
        assert pins(name) and unhashed == [], f"{name}: {unhashed}"


def test_production_holds_no_test_or_lint_tool() -> None:
    tools = {"pytest", "ruff", "mypy", "hypothesis", "playwright"}
    assert not tools & pins("production.txt").keys()


def test_dev_runs_the_versions_production_runs() -> None:
    production, dev = pins("production.txt"), pins("dev.txt")
    assert {p: v for p, (v, _) in production.items()} == {p: dev[p][0] for p in production}
