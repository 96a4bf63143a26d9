"""Small measuring helpers shared by the benchmark worker: timers, summary statistics, memory.

Kept free of numpy-heavy or backend imports so the worker can time its own imports.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable
from typing import Any


def timed_ms(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` once; return (milliseconds, its result)."""
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000.0, out


def repeat_ms(fn: Callable[[int], Any], runs: int, warmup: int) -> list[float]:
    """Call ``fn(i)`` ``warmup`` times untimed, then ``runs`` times timed; return the times in ms.

    ``i`` lets the caller cycle through inputs (end-to-end runs read a different file each time).
    """
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        fn(warmup + i)
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(times_ms: list[float]) -> dict[str, float]:
    """p50/p90/p99/mean/std/min/max of a list of latencies (ms); std is the population std."""
    values = sorted(times_ms)
    n = len(values)
    if n == 0:
        return {"n": 0}
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    return {
        "n": n,
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "mean": mean,
        "std": std,
        "min": values[0],
        "max": values[-1],
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def proc_status_mb(field: str) -> float | None:
    """A memory field of /proc/self/status (``VmHWM`` peak RSS, ``VmRSS`` current) in MiB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_snapshot() -> dict[str, float | None]:
    """Peak and current memory of this process, both ways of asking (they should agree)."""
    return {
        "ru_maxrss_mb": round(peak_rss_mb(), 2),
        "vm_hwm_mb": _round(proc_status_mb("VmHWM")),
        "vm_rss_mb": _round(proc_status_mb("VmRSS")),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
