"""The clinical safety file stays true: every test the hazard log names exists, and every hazard
carries the fields DCB0129 asks for, with risk ratings that follow the matrix it states."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAFETY = ROOT / "docs" / "clinical-safety"
HAZARD_LOG = SAFETY / "hazard-log.md"
TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
FIELDS = (
    "Cause",
    "Effect",
    "Harm",
    "Initial severity",
    "Initial likelihood",
    "Initial risk",
    "Controls in the product",
    "Residual severity",
    "Residual likelihood",
    "Residual risk",
    "The deploying trust must (DCB0160)",
)
SEVERITIES = ("Minor", "Significant", "Considerable", "Major", "Catastrophic")
LIKELIHOODS = ("Very low", "Low", "Medium", "High", "Very high")
# DCB0129's 5x5 matrix: rows are likelihoods (very low first), columns severities (minor first).
MATRIX = (
    (1, 1, 2, 2, 3),
    (1, 2, 2, 3, 4),
    (2, 2, 3, 3, 4),
    (2, 3, 3, 4, 5),
    (3, 4, 4, 5, 5),
)


@cache
def defined_tests(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text())
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    )


def hazards() -> dict[str, dict[str, str]]:
    """Each `## H-NN ...` section of the hazard log as {field: value}."""
    sections = re.split(r"^## (H-\d+ .*)$", HAZARD_LOG.read_text(), flags=re.M)[1:]
    found = {}
    for title, body in zip(sections[::2], sections[1::2], strict=True):
        rows = re.findall(r"^\| ([^|]+?) \| (.+?) \|$", body, flags=re.M)
        found[title] = {name.strip(): value.strip() for name, value in rows}
    return found


def test_every_test_the_safety_file_names_exists() -> None:
    references = [
        (document.name, path, name)
        for document in sorted(SAFETY.glob("*.md"))
        for path, name in TEST_REFERENCE.findall(document.read_text())
    ]
    assert len(references) >= 20, "the hazard log should point at the tests behind its controls"
    missing = [
        f"{document}: {path}::{name}"
        for document, path, name in references
        if not (ROOT / path).is_file() or name not in defined_tests(ROOT / path)
    ]
    assert not missing, "named in the clinical safety file but not in the suite: " + ", ".join(
        missing
    )


def test_the_hazard_log_covers_what_a_safety_officer_asks_about() -> None:
    titles = " ".join(hazards()).lower()
    for subject in (
        "not recorded",
        "not delivered",
        "wrong person",
        "escalation stops",
        "duplicate",
        "bot is down",
        "platform is down",
        "identifiers",
        "public page",
        "impersonat",
    ):
        assert subject in titles, f"no hazard about {subject!r}"


@pytest.mark.parametrize("title", list(hazards()))
def test_each_hazard_has_its_fields_and_a_rating_from_the_matrix(title: str) -> None:
    hazard = hazards()[title]
    missing = [name for name in FIELDS if not hazard.get(name)]
    assert not missing, f"{title} lacks {missing}"
    assert TEST_REFERENCE.search(hazard["Controls in the product"]), f"{title}: no test named"
    for stage in ("Initial", "Residual"):
        severity = hazard[f"{stage} severity"]
        likelihood = hazard[f"{stage} likelihood"]
        assert severity in SEVERITIES, f"{title}: {stage} severity {severity!r}"
        assert likelihood in LIKELIHOODS, f"{title}: {stage} likelihood {likelihood!r}"
        expected = MATRIX[LIKELIHOODS.index(likelihood)][SEVERITIES.index(severity)]
        assert hazard[f"{stage} risk"].startswith(str(expected)), (
            f"{title}: {stage} risk should be {expected} for {severity} x {likelihood}"
        )
