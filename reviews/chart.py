"""The digest's chart: requests per day by who raised them, and how fast they were acknowledged.

Drawn with matplotlib's Agg canvas on a Figure of its own (no pyplot, so no global state and
safe from the scheduler's threads), straight to PNG bytes in memory.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import date

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from reviews.model import Caller
from storage.digest import Spread

CALLER_COLOURS = {Caller.STAFF: "#005eb8", Caller.PATIENT: "#ffb81c", Caller.FAMILY: "#009639"}


def render(
    *,
    days: Sequence[date],
    by_caller: Mapping[tuple[int, str], int],
    acknowledge: Mapping[int, Spread],
    checkins: Mapping[int, int] | None = None,
) -> bytes:
    """A PNG: stacked bars of requests per digest day by caller (with the day's check-ins as a
    line), and the median and 90th percentile minutes to acknowledge per day (days with none
    are left out of the line)."""
    figure = Figure(figsize=(8, 6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    bars, times = figure.subplots(2, 1, sharex=True)
    positions = list(range(len(days)))
    bottom = [0] * len(days)
    for caller, colour in CALLER_COLOURS.items():
        heights = [by_caller.get((i, caller.value), 0) for i in positions]
        bars.bar(positions, heights, bottom=bottom, color=colour, label=caller.label)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    bars.set_ylabel("Requests raised")
    bars.set_title("Rapid review requests per day (24 hours to the digest)")
    bars.set_ylim(top=max(bottom, default=0) * 1.3 + 1)  # room for the legend above the bars
    handles, labels = bars.get_legend_handles_labels()
    if checkins is not None:
        # Check-ins run to tens a ward a day, requests to a few: their own scale on the right.
        daily = bars.twinx()
        daily.plot(positions, [checkins.get(i, 0) for i in positions], "-^", color="#768692")
        daily.set_ylabel("Daily check-ins")
        daily.set_ylim(bottom=0, top=max(checkins.values(), default=0) * 1.3 + 1)
        daily.yaxis.get_major_locator().set_params(integer=True)
        handles += daily.get_lines()
        labels.append("Check-ins")
    bars.legend(handles, labels, loc="upper left", ncols=4, fontsize="small")
    bars.yaxis.get_major_locator().set_params(integer=True)

    acknowledged = [
        i for i in positions if acknowledge.get(i) and acknowledge[i].median is not None
    ]
    for label, pick, style in (("median", "median", "-o"), ("90th percentile", "p90", "--s")):
        minutes = [(getattr(acknowledge[i], pick) or 0) / 60 for i in acknowledged]
        times.plot(acknowledged, minutes, style, label=label, color="#330072")
    times.set_ylabel("Minutes to acknowledge")
    times.set_ylim(bottom=0)
    if acknowledged:
        times.legend(loc="upper left", fontsize="small")
    times.set_xticks(positions, [f"{d:%d %b}" for d in days], rotation=45, fontsize="small")

    rendered = io.BytesIO()
    figure.savefig(rendered, format="png")
    # 32 colours read the same: about 13 KB (17 KB as base64), well inside Teams' limit of
    # about 28 KB a message; matplotlib's full-colour PNG is about 50 KB.
    compact = io.BytesIO()
    Image.open(rendered).convert("RGB").quantize(colors=32).save(compact, "PNG", optimize=True)
    return compact.getvalue()


def main() -> None:
    """`python -m reviews.chart`: figures as JSON on stdin, the PNG on stdout (chart_apart)."""
    import sys

    from reviews.chart_apart import read_figures

    sys.stdout.buffer.write(render(**read_figures(sys.stdin.buffer.read())))


if __name__ == "__main__":
    main()
