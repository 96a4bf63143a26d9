"""CI gates on a benchmark report: ``--min-accuracy`` and ``--max-drop``.

``min_accuracy`` is a fraction (0.9 = 90 %); ``max_drop`` is in accuracy points against the FP32
reference (2.0 = an artifact may be at most 2 points less accurate). A row that failed (no
artifact, worker crash) fails any gate that is set: CI must not pass on a model it never measured.
"""

from __future__ import annotations

from typing import Any

from edgemri.errors import GateError, UsageError


def validate(min_accuracy: float | None, max_drop: float | None) -> None:
    if min_accuracy is not None and not 0.0 <= min_accuracy <= 1.0:
        raise UsageError(f"--min-accuracy is a fraction between 0 and 1, not {min_accuracy}",
                         "For 90 % pass --min-accuracy 0.9")
    if max_drop is not None and max_drop < 0:
        raise UsageError(f"--max-drop is in accuracy points and cannot be negative ({max_drop})")


def gate_failures(report: dict[str, Any], min_accuracy: float | None = None,
                  max_drop: float | None = None) -> list[str]:
    """One line per failing row, naming it and the gate; empty when every gate passes."""
    validate(min_accuracy, max_drop)
    if min_accuracy is None and max_drop is None:
        return []
    reference = report.get("reference")
    failures = []
    for row in report.get("rows", []):
        label = f"{row['name']} ({row.get('threads')} thr)"
        acc = (row.get("metrics") or {}).get("accuracy")
        if acc is None:
            failures.append(f"{label}: not measured ({row.get('status')}: {row.get('reason')})")
            continue
        if min_accuracy is not None and acc < min_accuracy:
            failures.append(f"{label}: accuracy {acc:.4f} < min {min_accuracy:.4f}")
        delta = (row.get("vs_reference") or {}).get("accuracy_delta_points")
        if max_drop is not None and row["name"] != reference:
            if delta is None:
                failures.append(f"{label}: no FP32 reference to compare with")
            elif -delta > max_drop:
                failures.append(f"{label}: accuracy drop {-delta:.2f} points > max {max_drop:.2f}")
    return _unique(failures)


def _unique(items: list[str]) -> list[str]:
    """Rows at several thread counts share one accuracy: name each failure once per row label."""
    seen: set[str] = set()
    return [x for x in items if not (x in seen or seen.add(x))]


def check_gates(report: dict[str, Any]) -> None:
    """Raise ``GateError`` (exit code 3) when the report's recorded gate failures are not empty."""
    failures = (report.get("gates") or {}).get("failures") or []
    if failures:
        raise GateError("benchmark gate failed: " + "; ".join(failures),
                        f"See {report.get('run')}/bench/report.md", report=report)  # the CLI prints its table
