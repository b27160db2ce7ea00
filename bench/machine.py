"""How fast this machine runs Python, printed at the top of each benchmark's output to tell
machines apart. It does not predict what a request costs: one 2-core machine ran these additions
in 0.65 s, another in 0.26-0.33 s, and the same code took about as much CPU per command on both
(docs/performance.md). To compare machines, compare the bot's CPU per request at one client,
which bench/http_latency.py prints."""

from __future__ import annotations

import os
import sys
import time

ADDITIONS = 10_000_000


def speed() -> str:
    """ "2 CPUs, Python 3.11.7, 10 million additions in 0.62 s" (the best of three)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for number in range(ADDITIONS):
            total += number
        best = min(best, time.perf_counter() - started)
    return (
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"{ADDITIONS // 1_000_000} million additions in {best:.2f} s"
    )
