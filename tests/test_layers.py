"""The arrows point down only (DESIGN.md): handlers -> reviews -> rotas -> storage. Nothing in
reviews, rotas or storage imports handlers; nothing in rotas imports reviews; storage imports
neither; and cli.py never imports bot.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BELOW = {
    "reviews": {"handlers", "bot", "cli"},
    "rotas": {"handlers", "reviews", "bot", "cli"},
    "storage": {"handlers", "reviews", "rotas", "bot", "cli"},
}


def imported(path: Path) -> set[str]:
    """The top-level packages a module imports, at any depth of the file (TYPE_CHECKING too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(BELOW))
def test_nothing_imports_upwards(package: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported(path) & BELOW[package])
        for path in (ROOT / package).rglob("*.py")
        if imported(path) & BELOW[package]
    }
    assert wrong == {}


def test_the_command_line_does_not_import_the_composition_root() -> None:
    assert "bot" not in imported(ROOT / "cli.py")
