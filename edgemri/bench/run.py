"""Run one benchmark worker in a fresh Python process and bring back its result row.

The parent never imports a backend itself: each model gets a clean process so its memory and
load times are its own, and a crash (segfault, OOM, missing package) becomes a ``failed`` row
with the last lines of the worker's stderr as the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgemri.bench.worker import PROGRESS_PREFIX

#: progress callback: (phase, done, total)
ProgressFn = Callable[[str, int, int], None]


def worker_env(threads: int | None) -> dict[str, str]:
    """The worker's environment: quiet TensorFlow, and thread caps that match ``threads``."""
    from edgemri.quiet import child_env

    env = child_env()
    if threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    return env


def run_worker(spec: dict[str, Any], on_progress: ProgressFn | None = None,
               timeout: float | None = None) -> dict[str, Any]:
    """Measure one model in a subprocess; always returns a row (status ``failed`` on any crash)."""
    with tempfile.TemporaryDirectory(prefix="edgemri-bench-") as tmp:
        spec_file = Path(tmp) / "spec.json"
        out_file = Path(tmp) / "result.json"
        spec_file.write_text(json.dumps(spec))
        cmd = [sys.executable, "-m", "edgemri.bench.worker", "--spec", str(spec_file), "--out", str(out_file)]
        tail: deque[str] = deque(maxlen=30)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=worker_env(spec.get("threads")))
        reader = threading.Thread(target=_read_stderr, args=(proc, tail, on_progress), daemon=True)
        reader.start()
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            reader.join(5)
            return _failed(spec, f"worker timed out after {timeout:.0f} s")
        reader.join(5)
        if out_file.is_file():
            try:
                return json.loads(out_file.read_text())
            except json.JSONDecodeError:
                pass
        return _failed(spec, f"worker exited with code {code}: {_last_error(tail)}")


def _read_stderr(proc: subprocess.Popen[str], tail: deque[str], on_progress: ProgressFn | None) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith(PROGRESS_PREFIX):
            parts = line.split()
            if on_progress and len(parts) == 4:
                on_progress(parts[1], int(parts[2]), int(parts[3]))
            continue
        if line.strip():
            tail.append(line.rstrip())


def _last_error(tail: deque[str]) -> str:
    """The most useful stderr line: the last one that looks like an exception, else the last."""
    lines = list(tail)
    for line in reversed(lines):
        if "Error" in line or "error" in line or "Killed" in line:
            return line.strip()[:300]
    return lines[-1].strip()[:300] if lines else "no output (killed by a signal?)"


def _failed(spec: dict[str, Any], reason: str) -> dict[str, Any]:
    return {"name": spec.get("name"), "kind": spec.get("kind"), "path": str(spec.get("path")),
            "threads": spec.get("threads"), "status": "failed", "reason": reason}
