"""The digest's chart is drawn in a child process: the bot never holds matplotlib's ~40 MB,
and a chart that cannot be drawn never costs the day's figures."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reviews import chart_apart
from reviews.digest import build_digest
from tests.support.builders import make_services
from tests.support.process import ROOT

PNG = b"\x89PNG"


def test_the_digest_carries_its_chart_and_the_bot_never_imports_matplotlib(tmp_path) -> None:
    script = f"""
import sys
from datetime import UTC, datetime
from storage.database import Database
from storage.migrate import upgrade
from reviews.digest import build_digest
from tests.support.builders import make_services
from tests.support.clock import FrozenClock
db = Database("sqlite:///{tmp_path}/rr.db")
upgrade(db.engine)
message = build_digest(make_services(db, FrozenClock(datetime(2026, 12, 1, 9, tzinfo=UTC))))
print(message.attachments[0].content[:4] == {PNG!r}, "matplotlib" in sys.modules)
"""
    ran = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert ran.stdout.split() == ["True", "False"], ran.stderr


def test_a_chart_that_cannot_be_drawn_leaves_the_figures(db, clock, monkeypatch) -> None:
    monkeypatch.setattr(chart_apart, "TIMEOUT", 0.001)  # the child never finishes in time
    message = build_digest(make_services(db, clock))
    assert message.text  # the day's figures
    assert message.attachments == ()


@pytest.mark.parametrize("checkins", [None, {0: 3, 6: 1}])
def test_the_chart_drawn_apart_is_the_chart(checkins) -> None:
    from datetime import date, timedelta

    from reviews import chart
    from storage.digest import Spread

    days = [date(2026, 12, 1) + timedelta(days=n) for n in range(7)]
    figures = {
        "days": days,
        "by_caller": {(0, "staff"): 2, (6, "family"): 1},
        "acknowledge": {0: Spread(2, 120.0, 300.0), 6: Spread(1, None, None)},
        "checkins": checkins,
    }
    assert chart_apart.render(**figures) == chart.render(**figures)
