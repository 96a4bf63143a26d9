"""``bench(run)``: measure the FP32 reference and every artifact, compare, write the report.

Each (model, thread count) pair is one row, measured in its own worker process
(``edgemri.bench.worker``). Accuracy metrics are computed here, on the images every row could
decode, against the labels of the evaluation set; agreement is against the Keras FP32 row.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from edgemri.bench import inputs
from edgemri.bench.inputs import REFERENCE, BenchModel, EvalSet, eval_set
from edgemri.errors import UsageError
from edgemri.rundir import RunDir

SCHEMA = "edgemri.bench"
SCHEMA_VERSION = 1
WORKER_TIMEOUT_S = 3600.0


def bench(run: str | Path | RunDir, data: str | Path | None = None, targets: list[str] | None = None,
          threads: list[int] | tuple[int, ...] = (1,), runs: int = 50, warmup: int = 5,
          max_images: int | None = None, min_accuracy: float | None = None,
          max_drop: float | None = None, progress: bool = True, write: bool = True,
          split: str = "val", out: str | Path | None = None,
          ood_data: list[str | Path] | None = None) -> dict[str, Any]:
    """Benchmark a run directory and return the report (also written to ``out``, default ``RUN/bench/``).

    ``targets`` defaults to every artifact under ``RUN/export``. ``ood_data``: image folders that
    are out of distribution for this model, for the safety section (``edgemri.bench.safety``). Gates are
    checked after the report is written, so a failing CI job still leaves the report to read.
    """
    _check_options(threads, runs, warmup)
    from edgemri.bench.gates import validate

    validate(min_accuracy, max_drop)
    run = run if isinstance(run, RunDir) else RunDir.open(run)
    manifest = run.manifest()
    evals = eval_set(run, list(manifest.classes), data, max_images, split)
    rows_to_measure = inputs.targets(run, targets)
    t0 = time.time()
    rows = measure_all(run, rows_to_measure, evals, list(threads), runs, warmup, progress)
    add_metrics(rows, evals)
    report = build_report(run, evals, rows, {"threads": list(threads), "runs": runs, "warmup": warmup,
                                                   "max_images": max_images, "data": str(data) if data else None,
                                                   "split": None if data else split},
                          time.time() - t0)
    report["safety"] = _clean(_safety(rows_to_measure, evals, ood_data))
    from edgemri.bench.gates import check_gates, gate_failures

    report["gates"] = {"min_accuracy": min_accuracy, "max_drop": max_drop,
                       "failures": gate_failures(report, min_accuracy, max_drop)}
    if write:
        from edgemri.bench.report import write_report

        write_report(report, Path(out) if out else run.bench_dir)
    check_gates(report)
    return report


def _safety(models: list[BenchModel], evals: EvalSet, ood_data: list[str | Path] | None) -> dict[str, Any]:
    """Calibration before/after and the OOD guard's flagged shares (issue 17), per artifact."""
    from edgemri.bench.safety import safety_section

    return safety_section(models, evals.paths, evals.labels, ood_data)


def _check_options(threads: Any, runs: int, warmup: int) -> None:
    if not threads or any(int(t) < 1 for t in threads):
        raise UsageError("--threads needs positive integers, e.g. --threads 1,2")
    if runs < 1 or warmup < 0:
        raise UsageError("--runs must be at least 1 and --warmup at least 0")


def measure_all(run: RunDir, todo: list[BenchModel], evals: EvalSet, threads: list[int], runs: int,
                warmup: int, show_progress: bool) -> list[dict[str, Any]]:
    """One worker per (target, threads); predictions only on the first thread count of a target."""
    from edgemri.bench.run import run_worker

    jobs = [(t, n, i == 0) for t in todo for i, n in enumerate(threads)]
    rows: list[dict[str, Any]] = []
    with _progress(show_progress) as bar:
        for target, n_threads, predict in jobs:
            label = f"{target.name} ({n_threads} thread{'s' if n_threads > 1 else ''})"
            task = bar.add_task(label, total=None, phase="starting")
            if target.path is None:
                row = {"name": target.name, "kind": target.kind, "threads": n_threads, "status": "failed",
                       "reason": target.reason, "path": None}
                bar.update(task, total=1, completed=1, phase="no artifact")
            else:
                spec = {"name": target.name, "kind": target.kind, "path": str(target.path),
                        "manifest": str(run.manifest_path), "images": evals.paths, "threads": n_threads,
                        "runs": runs, "warmup": warmup, "predict": predict}

                def on_progress(phase: str, done: int, total: int, task: Any = task) -> None:
                    bar.update(task, total=max(total, 1), completed=done, phase=phase)

                started = time.perf_counter()
                row = run_worker(spec, on_progress, timeout=WORKER_TIMEOUT_S)
                row["worker_wall_s"] = round(time.perf_counter() - started, 3)
                bar.update(task, total=1, completed=1, phase=row.get("status", "?"))
            row["verification"] = target.verification
            if row.get("status") == "ok" and target.verification_failed:
                row["status"] = "failed-verification"
                row["reason"] = _verification_reason(target.verification)
            rows.append(row)
            _log_line(bar, label, row)
    return rows


def _verification_reason(ver: dict[str, Any] | None) -> str:
    ver = ver or {}
    return str(ver.get("reason") or "converted, but disagrees with the FP32 model beyond the verification gate")


def _log_line(bar: Any, label: str, row: dict[str, Any]) -> None:
    """Piped output (CI logs) gets no live bar: print one plain line per finished worker instead."""
    console = getattr(bar, "console", None)
    if console is None or console.is_terminal:
        return
    p50 = (row.get("latency_model_ms") or {}).get("p50")
    figures = f", model p50 {p50:.2f} ms" if p50 is not None else ""
    console.print(f"bench {label}: {row.get('status')}{figures} ({row.get('worker_wall_s', 0):.1f} s)",
                  markup=False, highlight=False)


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


def _progress(show: bool) -> Any:
    """A rich progress display on stderr: one line per worker with its current phase."""
    if not show:
        return _NoProgress()
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TextColumn("{task.fields[phase]}"), TimeElapsedColumn(),
                    console=console, disable=not console.is_terminal)


def add_metrics(rows: list[dict[str, Any]], evals: EvalSet) -> None:
    """Accuracy metrics per row and agreement with the FP32 reference, on commonly decoded images."""
    import numpy as np

    from edgemri.metrics import agreement, classification_report

    by_target: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.get("probabilities") is not None:
            by_target[row["name"]] = row
    usable = [i for i in range(len(evals.paths))
              if all(r["probabilities"][i] is not None for r in by_target.values())]
    labels = np.asarray([evals.labels[i] for i in usable], dtype=np.int64)
    probs = {name: np.asarray([r["probabilities"][i] for i in usable], dtype=np.float64).reshape(len(usable), -1)
             for name, r in by_target.items()}
    ref = probs.get(REFERENCE)
    ref_acc = None
    if ref is not None and len(usable):
        ref_acc = classification_report(labels, ref, evals.classes)["accuracy"]
    for row in rows:
        name = row["name"]
        if row.get("status") not in ("ok", "failed-verification") or name not in probs or not len(usable):
            continue
        row["metrics"] = classification_report(labels, probs[name], evals.classes)
        row["metrics"]["n_images_scored"] = len(usable)
        if ref is not None and name != REFERENCE:
            row["vs_reference"] = {
                **agreement(ref, probs[name]),
                "accuracy_delta_points": 100.0 * (row["metrics"]["accuracy"] - ref_acc),
            }
    for row in rows:  # other thread counts share the accuracy of the predicting row
        src = by_target.get(row["name"])
        if src is not None and row is not src and row.get("status") in ("ok", "failed-verification"):
            for key in ("metrics", "vs_reference"):
                if key in src:
                    row[key] = src[key]
        _add_overhead(row)


def _add_overhead(row: dict[str, Any]) -> None:
    """How much the runtime's pre/post-processing adds over a bare invoke, at p50 (percent)."""
    raw = (row.get("latency_raw_ms") or {}).get("p50")
    model = (row.get("latency_model_ms") or {}).get("p50")
    if raw and model and raw > 0:
        row["runtime_overhead_pct"] = 100.0 * (model / raw - 1.0)


def build_report(run: RunDir, evals: EvalSet, rows: list[dict[str, Any]], settings: dict[str, Any],
                 seconds: float) -> dict[str, Any]:
    from edgemri.bench.machine import describe_machine, git_commit

    bad: dict[str, str] = {}
    for row in rows:
        bad.update(row.pop("bad_images", None) or {})
        row.pop("probabilities", None)
        info = row.get("info") or {}
        row.setdefault("backend", info.get("backend"))
        row.setdefault("xnnpack", info.get("xnnpack"))
    return _clean({
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "run": str(run.root),
        "reference": REFERENCE,
        "eval": {"source": evals.source, "n_images": len(evals.paths), "classes": evals.classes,
                 "bad_images": bad},
        "settings": settings,
        "machine": describe_machine(),
        "git_commit": git_commit(),
        "seconds": round(seconds, 2),
        "rows": rows,
    })


def _clean(obj: Any) -> Any:
    """NaN/inf -> None so report.json is strict JSON (a browser's JSON.parse rejects NaN)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj
