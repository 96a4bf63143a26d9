"""``edgemri bench`` on a tiny run: reports are written with every row, gates exit 3, a broken
artifact becomes a ``failed`` row instead of a crash.

One module-scoped run directory (synthetic 32 px images, a 1-conv Keras model, a TFLite fp32
artifact, a broken artifact, an artifact whose conversion failed verification) and ONE benchmark
through the CLI keep this file well under a minute: every other test reads that report.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgemri.runtime.manifest import InputSpec, Manifest, sidecar_path

SIZE = 32
CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


def _build_run(root: Path) -> Path:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from edgemri.data.discover import discover
    from edgemri.data.split import make_split
    from edgemri.data.synth import synthesize

    data = synthesize(root / "data", task="brain4", per_class=3, size=SIZE, seed=0)
    run = root / "run"
    run.mkdir()
    make_split(discover(data), val_fraction=0.5, seed=0).save(run / "split.json")
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(len(CLASSES), activation="softmax", name="head")(x)
    model = keras.Model(inp, out, name="tiny")
    model.save(run / "model.keras")
    manifest = Manifest(task="brain4", classes=CLASSES, input=InputSpec(SIZE, SIZE), arch="tiny")
    manifest.save(run / "manifest.json")
    (run / "config.json").write_text(json.dumps({"arch": "tiny", "image_size": SIZE, "classes": CLASSES}))

    fp32 = run / "export" / "tflite-fp32" / "model.tflite"
    _convert_fp32(run, fp32)
    # converted, but its verification failed: still measured, flagged in the status
    dyn = run / "export" / "tflite-dynamic" / "model.tflite"
    dyn.parent.mkdir()
    shutil.copy(fp32, dyn)
    shutil.copy(sidecar_path(fp32), sidecar_path(dyn))
    (dyn.parent / "verification.json").write_text(json.dumps(
        {"status": "failed-verification", "reason": "top-1 agreement 0.80 < 0.98"}))
    # a truncated artifact: its worker must fail cleanly
    bad = run / "export" / "tflite-int8" / "model.tflite"
    bad.parent.mkdir()
    bad.write_bytes(fp32.read_bytes()[:200])
    manifest.replace(format="tflite").save(sidecar_path(bad))
    return run


def _convert_fp32(run: Path, fp32: Path) -> None:
    """The artifact the benchmark measures, made by the real converter."""
    from edgemri.convert.api import convert

    (result,) = convert(run, ["tflite-fp32"], calib=4, progress=False)
    assert result.status == "ok", result.reason
    assert result.path == fp32


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """The run dir, and the exit code + stderr of one gated ``edgemri bench`` call on it."""
    import contextlib
    import io

    from edgemri.cli import main

    run = _build_run(tmp_path_factory.mktemp("bench"))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["bench", str(run), "--runs", "5", "--warmup", "1", "--threads", "1",
                   "--max-drop", "50"])
    return run, rc, err.getvalue()


def _rows(run: Path) -> dict[str, dict]:
    report = json.loads((run / "bench" / "report.json").read_text())
    return {r["name"]: r for r in report["rows"]}


def test_reports_written_with_every_row(bench_run):
    run, _, _ = bench_run
    rows = _rows(run)
    assert set(rows) == {"keras-fp32", "tflite-fp32", "tflite-dynamic", "tflite-int8"}
    md = (run / "bench" / "report.md").read_text()
    html = (run / "bench" / "report.html").read_text()
    for name in rows:
        assert name in md and name in html
    assert "data:image/png;base64," in html  # plots are inline, the page stands alone
    assert not list((run / "bench").glob(".*tmp*"))  # atomic writes left no temporaries


def test_ok_rows_have_metrics_latency_and_memory(bench_run):
    run, _, _ = bench_run
    report = json.loads((run / "bench" / "report.json").read_text())
    rows = {r["name"]: r for r in report["rows"]}
    n_val = report["eval"]["n_images"]
    assert n_val >= 4 and report["eval"]["source"] == "split:val"
    for name in ("keras-fp32", "tflite-fp32"):
        row = rows[name]
        assert row["status"] == "ok", row.get("reason")
        assert row["metrics"]["n"] == n_val
        assert sum(map(sum, row["metrics"]["confusion_matrix"])) == n_val
        lat = row["latency_model_ms"]
        assert lat["n"] == 5 and 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert row["latency_e2e_ms"]["n"] == 5
        assert row["peak_rss_mb"] > 10 and row["file_size_bytes"] > 0 and row["load_ms"] > 0
    # same weights in float32: the TFLite model must agree with Keras
    vs = rows["tflite-fp32"]["vs_reference"]
    assert vs["top1_agreement"] == 1.0 and vs["max_prob_diff"] < 1e-4
    assert vs["accuracy_delta_points"] == pytest.approx(0.0, abs=1e-9)
    assert rows["tflite-fp32"]["backend"] == "litert"
    # TensorFlow is loaded only by the reference worker: the runtime worker stays far smaller
    assert rows["tflite-fp32"]["peak_rss_mb"] < rows["keras-fp32"]["peak_rss_mb"]
    assert report["machine"]["cores"] >= 1 and report["machine"]["cpu"]


def test_broken_and_unverified_artifacts_become_rows(bench_run):
    run, _, _ = bench_run
    rows = _rows(run)
    bad = rows["tflite-int8"]
    assert bad["status"] == "failed" and "model.tflite" in bad["reason"]
    assert "metrics" not in bad
    dyn = rows["tflite-dynamic"]
    assert dyn["status"] == "failed-verification" and "agreement" in dyn["reason"]
    assert dyn["metrics"]["accuracy"] == rows["tflite-fp32"]["metrics"]["accuracy"]


def test_gate_exits_3_naming_the_failed_row(bench_run):
    _, rc, err = bench_run
    assert rc == 3
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "tflite-int8" in errors[0] and "gate" in errors[0]
    assert "tflite-fp32" not in errors[0]  # rows within the drop limit are not named


def test_accuracy_gates_on_the_report(bench_run):
    from edgemri.bench.gates import gate_failures

    run, _, _ = bench_run
    report = json.loads((run / "bench" / "report.json").read_text())
    report["rows"] = [r for r in report["rows"] if r["status"] != "failed"]
    acc = {r["name"]: r["metrics"]["accuracy"] for r in report["rows"]}
    assert gate_failures(report, min_accuracy=min(acc.values())) == []
    too_high = min(1.0, max(acc.values()) + 0.01)
    failures = gate_failures(report, min_accuracy=too_high)
    assert len(failures) == len(report["rows"]) and all("accuracy" in f for f in failures)
    # a pretend 5-point drop of one artifact trips --max-drop 2 for that row only
    report["rows"][1]["vs_reference"]["accuracy_delta_points"] = -5.0
    failures = gate_failures(report, max_drop=2.0)
    assert len(failures) == 1 and report["rows"][1]["name"] in failures[0]


def test_bad_options_are_usage_errors(bench_run, capsys):
    from edgemri.cli import main

    run, _, _ = bench_run
    assert main(["bench", str(run), "--threads", "0"]) == 2
    assert main(["bench", str(run), "--min-accuracy", "90"]) == 2
    assert main(["bench", str(run), "--threads", "x"]) == 2
    assert main(["bench", str(run), "--targets", "tflite-int9"]) == 2  # a typo, not a failed row
    err = capsys.readouterr().err
    assert err.count("error:") == 4 and "tflite-int8" in err.splitlines()[-1]


def test_worker_spec_error_is_a_failed_row(tmp_path):
    from edgemri.bench.run import run_worker

    row = run_worker({"name": "nothing", "kind": "artifact", "path": str(tmp_path / "missing.tflite"),
                      "images": [str(tmp_path / "a.png")], "threads": 1, "runs": 1, "warmup": 0})
    assert row["status"] == "failed" and "missing.tflite" in row["reason"]


def test_summary_statistics_match_numpy():
    from edgemri.bench.measure import summarize

    values = list(np.random.default_rng(0).gamma(2.0, 3.0, 101))
    s = summarize(values)
    for q in (50, 90, 99):
        assert s[f"p{q}"] == pytest.approx(np.percentile(values, q))
    assert s["mean"] == pytest.approx(np.mean(values)) and s["std"] == pytest.approx(np.std(values))


def test_summary_of_no_times_is_empty():
    from edgemri.bench.measure import summarize

    assert summarize([]) == {"n": 0}
    assert summarize([2.0]) == {"n": 1, "p50": 2.0, "p90": 2.0, "p99": 2.0, "mean": 2.0, "std": 0.0,
                                "min": 2.0, "max": 2.0}


def test_gate_error_carries_the_report_it_judged():
    from edgemri.bench.gates import check_gates
    from edgemri.errors import GateError

    report = {"run": "RUN", "rows": [], "gates": {"failures": ["a (1 thr): accuracy 0.5 < min 0.9"]}}
    with pytest.raises(GateError) as err:
        check_gates(report)
    assert err.value.report is report and err.value.exit_code == 3
    assert "accuracy 0.5" in err.value.one_line() and "RUN/bench/report.md" in err.value.one_line()
    check_gates({"gates": {"failures": []}})  # nothing failed: no error
    assert GateError("x").report is None


@pytest.mark.parametrize("ver,failed", [(None, False), ({}, False), ({"status": "ok"}, False),
                                        ({"status": "failed-verification", "reason": "r"}, True),
                                        ({"status": "unreadable", "reason": "bad json"}, False)])
def test_only_convert_s_failed_verification_status_flags_a_row(ver, failed):
    from edgemri.bench.inputs import BenchModel

    assert BenchModel("t", None, verification=ver).verification_failed is failed


def test_split_option_selects_the_evaluation_images(bench_run):
    from edgemri.bench.inputs import eval_set
    from edgemri.data.split import Split
    from edgemri.errors import UsageError
    from edgemri.rundir import RunDir

    run = RunDir.open(bench_run[0])
    classes = list(run.manifest().classes)
    split = Split.load(run.split_path)
    for name in ("train", "val"):
        evals = eval_set(run, classes, split_name=name)
        assert evals.source == f"split:{name}" and len(evals.paths) == len(split.samples(name))
    with pytest.raises(UsageError, match="unknown split 'nosuchsplit'"):
        eval_set(run, classes, split_name="nosuchsplit")


def test_out_folder_and_xnnpack_switch(bench_run, tmp_path, monkeypatch):
    from edgemri.cli import main

    run = bench_run[0]
    before = (run / "bench" / "report.json").read_bytes()
    monkeypatch.setenv("EDGEMRI_XNNPACK", "0")  # inherited by the worker processes
    out = tmp_path / "no-xnnpack"
    assert main(["bench", str(run), "--targets", "tflite-fp32", "--runs", "3", "--warmup", "1",
                 "--out", str(out)]) == 0
    rows = {r["name"]: r for r in json.loads((out / "report.json").read_text())["rows"]}
    assert rows["tflite-fp32"]["xnnpack"] is False and rows["tflite-fp32"]["status"] == "ok"
    assert (run / "bench" / "report.json").read_bytes() == before  # the run's own report is untouched
