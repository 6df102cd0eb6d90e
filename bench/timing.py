"""Latency and memory measurement shared by both sides of the benchmark."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

WARMUP = 10  # queries run first and not timed: caches, lazy loads, first-touch page faults


def rss() -> int:
    """Resident set size of this process, bytes."""
    import psutil

    return int(psutil.Process(os.getpid()).memory_info().rss)


def peak_rss() -> int:
    """Highest resident set size this process has reached, bytes."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class Budget:
    """Wall-clock allowance for one timed loop; a loop stops early when it is spent."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.perf_counter()

    def spent(self) -> bool:
        return time.perf_counter() - self.start > self.seconds


def summarise(times_s: Sequence[float], total: int) -> dict[str, Any]:
    ms = np.asarray(times_s) * 1000.0
    return {
        "n": int(ms.size),
        "of": total,
        "complete": ms.size == total,
        "p50_ms": float(np.percentile(ms, 50)) if ms.size else None,
        "p95_ms": float(np.percentile(ms, 95)) if ms.size else None,
        "mean_ms": float(ms.mean()) if ms.size else None,
    }


def latencies(call: Callable[[str], object], queries: Sequence[str], budget: Budget) -> dict[str, Any]:
    """Warm up on the first queries, then time every query once, until the budget is spent."""
    for q in queries[:WARMUP]:
        call(q)
    times: list[float] = []
    for q in queries:
        t = time.perf_counter()
        call(q)
        times.append(time.perf_counter() - t)
        if budget.spent():
            break
    out = summarise(times, len(queries))
    out["load1"] = os.getloadavg()[0]
    return out
