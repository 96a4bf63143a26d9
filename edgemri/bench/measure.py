"""Small measuring helpers shared by the benchmark worker: timers, summary statistics, memory.

Nothing heavy is imported at module level, so the worker can time its own backend import
(numpy's import included); the statistics use numpy, which every backend loads anyway.
"""

from __future__ import annotations

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


def summarize(times_ms: list[float]) -> dict[str, float]:
    """p50/p90/p99/mean/std/min/max of a list of latencies (ms).

    Percentiles are numpy's default (linear interpolation); std is the population std (ddof=0).
    """
    if not times_ms:
        return {"n": 0}
    import numpy as np  # here, not at module level: the worker's import_ms must include numpy's import

    values = np.asarray(times_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "n": int(values.size),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
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
