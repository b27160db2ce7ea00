"""The digest's chart drawn in a child process (`python -m reviews.chart`), once a day.

matplotlib, numpy and PIL are about 40 MB that stay resident once imported; drawn here, the bot
itself never imports them. The figures go to the child as JSON on stdin, the PNG comes back on
stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from storage.digest import Spread

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120.0  # seconds: a chart takes about two, most of it importing matplotlib


class ChartError(RuntimeError):
    """The child process could not draw the chart."""


def render(
    *,
    days: Sequence[date],
    by_caller: Mapping[tuple[int, str], int],
    acknowledge: Mapping[int, Spread],
    checkins: Mapping[int, int] | None = None,
) -> bytes:
    """reviews.chart.render's PNG, drawn in a child process. ChartError if it fails."""
    figures = {
        "days": [d.isoformat() for d in days],
        "by_caller": [[i, caller, n] for (i, caller), n in by_caller.items()],
        "acknowledge": [[i, s.count, s.median, s.p90] for i, s in acknowledge.items()],
        "checkins": None if checkins is None else [[i, n] for i, n in checkins.items()],
    }
    try:
        drawn = subprocess.run(
            [sys.executable, "-m", "reviews.chart"],
            cwd=ROOT,
            input=json.dumps(figures).encode(),
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ChartError(type(error).__name__) from error
    if drawn.returncode != 0:
        last = drawn.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise ChartError(f"exit {drawn.returncode}: {last[0][:200]}")
    return drawn.stdout


def read_figures(raw: bytes) -> dict[str, Any]:
    """render's JSON back as reviews.chart.render's keyword arguments."""
    figures = json.loads(raw)
    checkins = figures["checkins"]
    return {
        "days": [date.fromisoformat(d) for d in figures["days"]],
        "by_caller": {(i, caller): n for i, caller, n in figures["by_caller"]},
        "acknowledge": {
            i: Spread(count, median, p90) for i, count, median, p90 in figures["acknowledge"]
        },
        "checkins": None if checkins is None else {i: n for i, n in checkins},
    }
