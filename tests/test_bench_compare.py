"""``edgemri compare``: the cross-run summary and its aims, on hand-made reports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgemri.bench.compare import Aims, check_aims, load_report, summary_rows, to_markdown
from edgemri.cli import main
from edgemri.errors import UsageError


def _row(name: str, threads: int, acc: float, size: int, p50: float, agree: float | None = None,
         delta: float | None = None, **extra) -> dict:
    return {"name": name, "threads": threads, "status": extra.pop("status", "ok"), "file_size_bytes": size,
            "metrics": {"accuracy": acc, "balanced_accuracy": acc - 0.01, "macro_f1": acc - 0.02,
                        "roc_auc": 0.99, "ece": 0.03,
                        "per_class": {"a": {"sensitivity": 0.9}, "b": {"sensitivity": 0.8}}},
            "vs_reference": None if agree is None else {"top1_agreement": agree, "accuracy_delta_points": delta},
            "latency_model_ms": {"p50": p50, "p99": p50 * 1.5}, "peak_rss_mb": 100.0 * threads, **extra}


def _report(int8_acc: float = 0.90, int8_agree: float = 0.99, int8_size: int = 250) -> dict:
    rows = []
    for t in (1, 2):
        rows += [_row("keras-fp32", t, 0.90, 4000, 8.0 / t),
                 _row("tflite-fp32", t, 0.90, 1000, 2.0 / t, 1.0, 0.0),
                 _row("tflite-int8", t, int8_acc, int8_size, 1.0 / t, int8_agree, 100 * (int8_acc - 0.90),
                      verification={"reference": "qat", "top1_agreement": 0.995})]
    return {"schema": "edgemri.bench", "reference": "keras-fp32", "run": "runs/x", "rows": rows,
            "eval": {"n_images": 10, "source": "split:test", "classes": ["a", "b"]},
            "machine": {"cpu": "cpu", "arch": "x86_64", "cores": 2}, "git_commit": "abc"}


def test_summary_rows_merge_thread_counts_and_put_reference_first():
    rows = summary_rows(_report())
    assert [r["target"] for r in rows] == ["keras-fp32", "tflite-fp32", "tflite-int8"]
    int8 = rows[2]
    assert int8["p50_1"] == 1.0 and int8["p50_2"] == 0.5 and int8["peak_rss_mb"] == 200.0
    assert int8["verified_against"] == "qat" and int8["agreement_verified"] == 0.995


def test_aims_met_and_missed():
    aims = Aims(min_fp32_accuracy=0.95)
    good = {aim: ok for aim, _, ok in check_aims(_report(), aims)}
    assert list(good.values()) == [False, True, True, True]  # FP32 90% < 95%; int8 meets the rest
    bad = {aim: (value, ok) for aim, value, ok in check_aims(_report(0.88, 0.97, 400), Aims())}
    assert [ok for _, ok in bad.values()] == [False, False, False]
    assert bad["int8 size <= 30% of tflite-fp32"][0] == "40%"
    assert bad["int8 accuracy within 1 point of FP32"][0] == "-2.0 points"
    gain = {aim: ok for aim, _, ok in check_aims(_report(0.92), Aims())}
    assert gain["int8 accuracy within 1 point of FP32"] is False  # +2 points: not the same model any more


def test_missing_int8_is_not_judged():
    report = _report()
    report["rows"] = [r for r in report["rows"] if r["name"] != "tflite-int8"]
    assert check_aims(report, Aims()) == [("tflite-int8 artifact", "not benched", None)]


def test_markdown_has_both_thread_columns_and_qat_agreement():
    md = to_markdown([("demo", _report())], Aims())
    line = next(x for x in md.splitlines() if x.startswith("| tflite-int8"))
    assert "1.00 / 1.50" in line and "0.50 / 0.75" in line and "99.0 (QAT 99.5)" in line
    assert md.splitlines()[0].startswith("### demo: 10 images from split:test")


def test_cli_writes_file_and_check_exits_3(tmp_path: Path, capsys):
    run = tmp_path / "run" / "bench"
    run.mkdir(parents=True)
    (run / "report.json").write_text(json.dumps(_report(0.80)))
    out = tmp_path / "summary.md"
    odd = tmp_path / "lr=1e-3"  # a path with "=" after LABEL= stays whole
    shutil.copytree(tmp_path / "run", odd)
    assert main(["compare", f"mine={odd}", "--out", str(out)]) == 0
    assert "### mine:" in out.read_text()
    assert main(["compare", str(tmp_path / "run"), "--check"]) == 3
    assert "aim(s) not met" in capsys.readouterr().err


def test_bad_inputs_name_the_file(tmp_path: Path):
    with pytest.raises(UsageError, match="no bench report"):
        load_report(tmp_path)
    (tmp_path / "report.json").write_text("{not json")
    with pytest.raises(UsageError, match="not a readable bench report"):
        load_report(tmp_path)
    (tmp_path / "report.json").write_text('{"schema": "other"}')
    with pytest.raises(UsageError, match="not an edgemri bench report"):
        load_report(tmp_path / "report.json")


def test_overview_line_per_run_only_for_several_runs():
    one = to_markdown([("a", _report())], Aims())
    assert "fastest ok target" not in one
    two = to_markdown([("a", _report()), ("b", _report(0.80, 0.90, 400))], Aims())
    lines = [x for x in two.splitlines() if x.startswith(("| a |", "| b |"))]
    assert len(lines) == 2
    assert "tflite-int8 (1.00)" in lines[0] and lines[0].endswith("| 3/3 | – |")
    assert "40%" in lines[1] and lines[1].endswith("| 0/3 | – |")


def test_overview_names_each_runs_qat_recipe(tmp_path: Path):
    recipes = {"new": {"epochs": 1, "lr": 1e-5, "distill": 1.0}, "old": {"epochs": 1, "lr": 1e-4}}
    for name, qat in recipes.items():
        (tmp_path / name / "bench").mkdir(parents=True)
        (tmp_path / name / "qat").mkdir()
        (tmp_path / name / "bench" / "report.json").write_text(json.dumps(_report()))
        (tmp_path / name / "qat" / "metrics.json").write_text(json.dumps(qat))
    reports = [(name, load_report(tmp_path / name)) for name in recipes]
    lines = [x for x in to_markdown(reports, Aims()).splitlines() if x.startswith(("| new |", "| old |"))]
    assert lines[0].endswith("| 1 ep, lr 1e-05, distill 1 |")
    assert lines[1].endswith("| 1 ep, lr 0.0001, labels |")  # before --distill: trained on labels
