"""Compare benchmark reports of several runs: one summary table, and the edge aims checked.

``edgemri bench RUN`` answers "what did this model lose on the way to the device"; this module
answers "which run and which artifact should I ship", so the README's results table is generated
from the reports instead of being typed by hand (and cannot drift from them).
Standard library only: it reads ``report.json`` files and writes Markdown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgemri.bench.machine import machine_name
from edgemri.bench.report import md_table
from edgemri.errors import UsageError

INT8_TARGET = "tflite-int8"
PTQ_TARGET = "tflite-int8-ptq"
FP32_ARTIFACT = "tflite-fp32"


@dataclass(frozen=True)
class Aims:
    """The edge aims of a results table (defaults: issue 7's)."""

    max_int8_drop_points: float = 1.0  # either way: |int8 - FP32| accuracy
    min_int8_agreement: float = 0.98
    max_int8_size_ratio: float = 0.30
    min_fp32_accuracy: float | None = None


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a bench report from a run directory, its bench/ folder or the report.json itself."""
    p = Path(path)
    for candidate in (p, p / "report.json", p / "bench" / "report.json"):
        if candidate.is_file():
            try:
                report = json.loads(candidate.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise UsageError(f"{candidate}: not a readable bench report ({exc})",
                                 "Re-run `edgemri bench RUN` to rewrite it.") from exc
            if not isinstance(report, dict) or report.get("schema") != "edgemri.bench":
                raise UsageError(f"{candidate}: not an edgemri bench report (no schema 'edgemri.bench')",
                                 "Pass a run directory benched with `edgemri bench RUN`.")
            return {**report, "qat_recipe": _qat_recipe(candidate)}
    raise UsageError(f"{p}: no bench report (looked for report.json and bench/report.json)",
                     f"Run `edgemri bench {p}` first.")


def _qat_recipe(report_path: Path) -> str | None:
    """How the run's QAT model was fine-tuned (RUN/qat/metrics.json beside RUN/bench/): the int8 row
    depends on it, so the table says it. Runs from before --distill trained on labels (distill 0)."""
    metrics = report_path.parent.parent / "qat" / "metrics.json"
    try:
        m = json.loads(metrics.read_text())
        return f"{m['epochs']} ep, lr {m['lr']:g}, " + (f"distill {m['distill']:g}" if m.get("distill") else "labels")
    except (OSError, ValueError, KeyError, TypeError):  # no QAT run, or a record this column cannot read
        return None


def _rows_by_threads(report: dict[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for row in report.get("rows", []):
        out.setdefault(row["name"], {})[int(row.get("threads") or 1)] = row
    return out


def _latency(row: dict[str, Any] | None) -> tuple[float | None, float | None]:
    lat = (row or {}).get("latency_model_ms") or {}
    return lat.get("p50"), lat.get("p99")


def summary_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per target (FP32 reference first): the numbers a results table shows."""
    by_name = _rows_by_threads(report)
    rows = []
    for name, per_thread in by_name.items():
        first = per_thread[min(per_thread)]
        metrics, vs = first.get("metrics") or {}, first.get("vs_reference") or {}
        verification = first.get("verification") or {}
        p50_1, p99_1 = _latency(per_thread.get(1))
        p50_2, p99_2 = _latency(per_thread.get(2))
        rows.append({
            "target": name, "status": first.get("status", "?"), "size_bytes": first.get("file_size_bytes"),
            "accuracy": metrics.get("accuracy"), "balanced_accuracy": metrics.get("balanced_accuracy"),
            "macro_f1": metrics.get("macro_f1"), "roc_auc": metrics.get("roc_auc"), "ece": metrics.get("ece"),
            "sensitivity": {c: (v or {}).get("sensitivity") for c, v in (metrics.get("per_class") or {}).items()},
            "delta_points": vs.get("accuracy_delta_points"), "agreement": vs.get("top1_agreement"),
            "verified_against": verification.get("reference"),
            "agreement_verified": verification.get("top1_agreement"),
            "p50_1": p50_1, "p99_1": p99_1, "p50_2": p50_2, "p99_2": p99_2,
            "peak_rss_mb": max((r.get("peak_rss_mb") or 0.0 for r in per_thread.values()), default=None) or None,
        })
    reference = report.get("reference")
    rows.sort(key=lambda r: r["target"] != reference)
    return rows


def _int8_size_ratio(rows: dict[str, dict[str, Any]], reference: str | None) -> tuple[float | None, str]:
    """(int8 file size / FP32 TFLite size, the FP32 target it was divided by); Keras file if no TFLite."""
    int8, base = rows.get(INT8_TARGET) or {}, rows.get(FP32_ARTIFACT) or rows.get(reference) or {}
    if not int8.get("size_bytes") or not base.get("size_bytes"):
        return None, base.get("target", "FP32")
    return int8["size_bytes"] / base["size_bytes"], base["target"]


def check_aims(report: dict[str, Any], aims: Aims) -> list[tuple[str, str, bool | None]]:
    """(aim, measured, met) for the int8 artifact vs FP32; met is None when it cannot be judged."""
    rows = {r["target"]: r for r in summary_rows(report)}
    ref, int8 = rows.get(report.get("reference")), rows.get(INT8_TARGET)
    out: list[tuple[str, str, bool | None]] = []
    if aims.min_fp32_accuracy is not None:
        acc = (ref or {}).get("accuracy")
        out.append((f"FP32 accuracy >= {100 * aims.min_fp32_accuracy:.0f}%", _pct(acc),
                    None if acc is None else acc >= aims.min_fp32_accuracy))
    if int8 is None:
        return out + [(f"{INT8_TARGET} artifact", "not benched", None)]
    drop = int8.get("delta_points")
    out.append((f"int8 accuracy within {aims.max_int8_drop_points:g} point of FP32",
                "–" if drop is None else f"{drop:+.1f} points",
                None if drop is None else abs(drop) <= aims.max_int8_drop_points))  # a gain this big is a
    # different model (QAT trained on), not the same one quantized
    agree = int8.get("agreement")
    out.append((f"int8 top-1 agreement with FP32 >= {100 * aims.min_int8_agreement:.0f}%", _pct(agree),
                None if agree is None else agree >= aims.min_int8_agreement))
    ratio, base_name = _int8_size_ratio(rows, report.get("reference"))
    out.append((f"int8 size <= {100 * aims.max_int8_size_ratio:.0f}% of {base_name}",
                "–" if ratio is None else f"{100 * ratio:.0f}%",
                None if ratio is None else ratio <= aims.max_int8_size_ratio))
    return out


# -- markdown --------------------------------------------------------------------------------------
def _pct(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{100.0 * value:.{digits}f}"


def _num(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pair(a: Any, b: Any) -> str:
    return "–" if a is None else f"{a:.2f} / {_num(b)}"


def _agreement(row: dict[str, Any]) -> str:
    text = _pct(row["agreement"])
    if row.get("verified_against") == "qat" and row.get("agreement_verified") is not None:
        text += f" (QAT {_pct(row['agreement_verified'])})"
    return text


def _title(report: dict[str, Any], label: str | None) -> str:
    ev = report.get("eval", {})
    return (f"{label or report.get('run')}: {ev.get('n_images')} images from {ev.get('source')}, "
            f"classes {', '.join(ev.get('classes') or [])}")


HEADER = ["target", "status", "size MB", "acc %", "bal. acc %", "macro F1 %", "AUC", "ECE", "Δ acc (pts)",
          "agreement %", "p50 / p99 ms, 1 thread", "p50 / p99 ms, 2 threads", "peak RSS MiB"]


def report_table(report: dict[str, Any]) -> list[list[str]]:
    """The per-target rows of one report, formatted."""
    return [[r["target"], r["status"], _num(None if r["size_bytes"] is None else r["size_bytes"] / 1e6),
             _pct(r["accuracy"]), _pct(r["balanced_accuracy"]), _pct(r["macro_f1"]), _num(r["roc_auc"], 3),
             _num(r["ece"], 3), "–" if r["delta_points"] is None else f"{r['delta_points']:+.1f}",
             _agreement(r), _pair(r["p50_1"], r["p99_1"]), _pair(r["p50_2"], r["p99_2"]),
             _num(r["peak_rss_mb"], 0)] for r in summary_rows(report)]


def _sensitivity_lines(report: dict[str, Any]) -> list[str]:
    rows = [r for r in summary_rows(report) if r["target"] in (report.get("reference"), INT8_TARGET)]
    classes = report.get("eval", {}).get("classes") or []
    if not rows or not classes:
        return []
    table = [[r["target"]] + [_pct(r["sensitivity"].get(c)) for c in classes] for r in rows]
    return ["Per-class sensitivity (%):", "", md_table(["target"] + list(classes), table), ""]


OVERVIEW_HEADER = ["run", "eval images", "FP32 acc %", "FP32 AUC", "int8 acc %", "int8 Δ (pts)",
                   "int8 agreement %", "PTQ int8 acc % (agreement %)", "int8 / fp32 size", "fastest ok target (p50 ms, 1 thread)", "aims met", "QAT"]


def overview_row(label: str | None, report: dict[str, Any], aims: Aims) -> list[str]:
    """One line per run: the FP32 model, its int8 TFLite artifact, the fastest verified artifact."""
    rows = {r["target"]: r for r in summary_rows(report)}
    ref, int8 = rows.get(report.get("reference")) or {}, rows.get(INT8_TARGET) or {}
    ptq = rows.get(PTQ_TARGET)
    ratio, _ = _int8_size_ratio(rows, report.get("reference"))
    ok = [r for r in rows.values() if r["status"] == "ok" and r["p50_1"] is not None]
    fastest = min(ok, key=lambda r: r["p50_1"], default=None)
    checks = check_aims(report, aims)
    return [label or str(report.get("run")), str(report.get("eval", {}).get("n_images")), _pct(ref.get("accuracy")),
            _num(ref.get("roc_auc"), 3), _pct(int8.get("accuracy")),
            "–" if int8.get("delta_points") is None else f"{int8['delta_points']:+.1f}",
            _agreement(int8) if int8 else "–",
            "–" if not ptq else f"{_pct(ptq['accuracy'])} ({_pct(ptq['agreement'])})", "–" if ratio is None else f"{100 * ratio:.0f}%",
            "–" if fastest is None else f"{fastest['target']} ({fastest['p50_1']:.2f})",
            f"{sum(ok is True for _, _, ok in checks)}/{len(checks)}", report.get("qat_recipe") or "–"]


def to_markdown(reports: list[tuple[str | None, dict[str, Any]]], aims: Aims) -> str:
    """The summary of several labelled reports: an overview line per run, then per-run tables,
    per-class sensitivity and the aims."""
    parts: list[str] = []
    if len(reports) > 1:
        parts += [md_table(OVERVIEW_HEADER, [overview_row(label, r, aims) for label, r in reports]), ""]
    for label, report in reports:
        m = report.get("machine", {})
        parts += [f"### {_title(report, label)}", "",
                  (f"Machine: {machine_name(m)} {m.get('arch')}, {m.get('cores')} cores, Python {m.get('python')}, "
                   f"load average {m.get('load_average')}; commit {report.get('git_commit') or 'unknown'}; "
                   f"{report.get('created')}."), ""]
        parts += [md_table(HEADER, report_table(report)), ""]
        parts += _sensitivity_lines(report)
        checks = check_aims(report, aims)
        if checks:
            verdict = {True: "met", False: "**not met**", None: "not judged"}
            parts += ["Aims: " + "; ".join(f"{aim}: {value} ({verdict[ok]})" for aim, value, ok in checks) + ".", ""]
    parts += [("`status` and the bracketed QAT agreement are `edgemri convert`'s verification (on the run's "
               "validation split); every other column is measured on each heading's evaluation images. Δ and "
               "agreement are against the Keras FP32 model; latency is the model call alone, batch 1."), ""]
    return "\n".join(parts)
