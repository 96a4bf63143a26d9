"""``edgemri tune`` and the runtime hints it writes: measured, gated, recorded, used, overridable.

Runtime-marked tests use the committed tiny models (tests/data) and need no TensorFlow; each works
on its own copy, because tune writes into the manifest beside the model.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from edgemri.bench.tune import TUNE_FILE, Candidate, measure_candidates, pick_winner, tune
from edgemri.cli import main
from edgemri.errors import UsageError
from edgemri.runtime.backends import backend_for
from edgemri.runtime.embed import read_embedded
from edgemri.runtime.manifest import Manifest, RuntimeHints, sidecar_path
from edgemri.runtime.predictor import Predictor

runtime = pytest.mark.runtime


def copy_artifact(src: Path, dest_dir: Path) -> Path:
    """The model, its companions and its sidecar in a folder of their own."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    for path in (src, *backend_for(src).file_format().companion_paths(src), sidecar_path(src)):
        if path.is_file():
            shutil.copy(path, dest_dir / path.name)
    return dest_dir / src.name


def with_hints(path: Path, **hints: object) -> Path:
    """Write hand-made runtime hints into the sidecar (what a tuned manifest would say)."""
    sidecar = sidecar_path(path)
    Manifest.load(sidecar).replace(runtime=RuntimeHints(**hints)).save(sidecar)  # type: ignore[arg-type]
    return path


@pytest.fixture()
def int8(tiny_models, tmp_path) -> Path:
    return copy_artifact(tiny_models.tflite_int8, tmp_path / "tflite-int8")


# -- tune ------------------------------------------------------------------------------------------
@runtime
def test_tune_records_the_winner_in_sidecar_and_embedded_manifest(int8):
    before = int8.read_bytes()
    [result] = tune(int8, threads=[1, 2], runs=3, warmup=1, n_images=4)
    assert len(result.candidates) == 4  # xnnpack on/off x 1, 2 threads
    assert {(c.threads, c.options["xnnpack"]) for c in result.candidates} == {(1, True), (1, False), (2, True),
                                                                              (2, False)}
    winner = result.winner
    assert winner is not None and winner.status == "ok"
    assert winner.p50_ms == min(c.p50_ms for c in result.candidates if c.status == "ok")
    for copy in (Manifest.load(sidecar_path(int8)), read_embedded(int8)):
        hints = copy.runtime
        assert hints.backend == "litert" and hints.threads == winner.threads
        assert hints.options == {"xnnpack": winner.options["xnnpack"]}
        assert hints.measured["machine"]["cpu"] and hints.measured["machine"]["cores"] >= 1
        assert hints.measured["p50_ms"] == pytest.approx(winner.p50_ms, abs=1e-4)
    assert int8.read_bytes() != before  # the embedded copy was re-written...
    np.testing.assert_array_equal(  # ...and the model still runs the same
        Predictor.load(int8, hints=False).predict_pixels(np.zeros((1, 16, 16, 3), np.uint8)),
        Predictor.load(copy_artifact(int8, int8.parent.parent / "x"), hints=False).predict_pixels(
            np.zeros((1, 16, 16, 3), np.uint8)))
    saved = json.loads((int8.parent / TUNE_FILE).read_text())
    assert saved["winner"]["threads"] == winner.threads and len(saved["candidates"]) == 4


@runtime
def test_predictor_uses_the_tuned_hints(int8):
    [result] = tune(int8, threads=[1], runs=2, warmup=0, n_images=2)
    predictor = Predictor.load(int8)
    assert predictor.runtime.hints == "used"
    assert predictor.engine.threads == 1
    assert predictor.engine.options()["xnnpack"] == result.winner.options["xnnpack"]
    assert predictor.info()["runtime"]["options"] == result.winner.options


@runtime
def test_no_write_leaves_every_file_alone(int8, capsys):
    files = {p: p.read_bytes() for p in int8.parent.iterdir()}
    assert main(["tune", str(int8), "--threads", "1", "--runs", "2", "--warmup", "0", "--images", "2",
                 "--no-write"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "WINNER" in out and "xnnpack=False" in out and "nothing written" in out
    from edgemri.bench.machine import describe_machine, machine_name

    assert f"{machine_name(describe_machine())}, " in out  # the tier survives rich's markup ("[avx2]")
    assert {p: p.read_bytes() for p in int8.parent.iterdir()} == files


@runtime
def test_tune_a_run_tunes_every_artifact(make_export_run, tmp_path):
    run = make_export_run(tmp_path)
    results = tune(run, threads=[1], runs=2, warmup=0, n_images=2)
    assert sorted(r.path.parent.name for r in results) == ["tflite-fp32", "tflite-int8"]
    assert {r.kind for r in results} == {"float", "quantized"}
    for r in results:
        assert Manifest.load(sidecar_path(r.path)).runtime.backend == "litert"


def test_tune_onnx_rewrites_the_embedded_manifest(tiny_models, tmp_path):
    """Not `runtime`: re-embedding into an ONNX file goes through the onnx package (the format's writer)."""
    pytest.importorskip("onnx")
    model = copy_artifact(tiny_models.onnx, tmp_path / "onnx")
    [result] = tune(model, threads=[1], runs=2, warmup=0, n_images=2)
    assert {c.options["graph_optimization"] for c in result.candidates} == {"basic", "extended", "all"}
    assert read_embedded(model).runtime.options == result.winner.options
    assert Predictor.load(model).engine.options()["graph_optimization"] == result.winner.options["graph_optimization"]


def test_tune_openvino_keeps_f32_and_rewrites_the_ir(tiny_models, tmp_path):
    pytest.importorskip("openvino")
    model = copy_artifact(tiny_models.openvino, tmp_path / "openvino")
    [result] = tune(model, threads=[1], runs=2, warmup=0, n_images=2)
    assert {c.options["performance_hint"] for c in result.candidates} == {"LATENCY", "THROUGHPUT"}
    assert all("precision" not in c.options for c in result.candidates)
    assert read_embedded(model).runtime.options == result.winner.options
    predictor = Predictor.load(model)
    assert predictor.runtime.hints == "used" and predictor.info()["inference_precision"] == "f32"


@runtime
def test_a_configuration_whose_outputs_differ_cannot_win(int8, tiny_models):
    pixels = tiny_models.pixels(4)
    wrong = np.tile(np.eye(3, dtype=np.float32)[[0]], (4, 1))  # "the default says class 0 everywhere"
    cand, same = Candidate(1, {"xnnpack": False}), Candidate(1, {"xnnpack": True})
    measure_candidates(int8, [cand, same], pixels, wrong, runs=2, warmup=0, max_prob_diff=None,
                       min_agreement=0.98)
    assert cand.status == same.status == "mismatch" and "top-1 agreement" in cand.reason
    reference = Predictor.load(int8, hints=False).predict_pixels(pixels)
    again = Candidate(1, {"xnnpack": True})
    measure_candidates(int8, [again], pixels, reference, runs=2, warmup=0, max_prob_diff=1e-6, min_agreement=1.0)
    assert again.status == "ok" and again.p50_ms > 0 and again.max_prob_diff == 0.0
    fast_but_wrong, slow_ok = Candidate(1, {}, p50_ms=1.0, status="mismatch"), Candidate(2, {}, p50_ms=5.0)
    pick_winner([fast_but_wrong, slow_ok])
    assert slow_ok.winner and not fast_but_wrong.winner


@runtime
def test_tune_refuses_what_it_cannot_measure(int8, monkeypatch, tmp_path):
    with pytest.raises(UsageError, match="--threads"):
        tune(int8, threads=[0])
    with pytest.raises(UsageError, match="min-agreement"):
        tune(int8, min_agreement=1.5)
    monkeypatch.setenv("EDGEMRI_XNNPACK", "0")
    with pytest.raises(UsageError, match="EDGEMRI_XNNPACK"):
        tune(int8, threads=[1])
    monkeypatch.delenv("EDGEMRI_XNNPACK")
    assert main(["tune", str(tmp_path / "nothing-here")]) == 2


# -- hints at load time ----------------------------------------------------------------------------
@runtime
def test_hints_apply_unless_switched_off(int8, monkeypatch):
    with_hints(int8, backend="litert", threads=1, options={"xnnpack": False})
    hinted = Predictor.load(int8)
    assert hinted.engine.xnnpack() is False and hinted.engine.threads == 1  # the delegate really is off
    assert hinted.runtime.hints == "used"
    off = Predictor.load(int8, hints=False)
    assert off.engine.xnnpack() is True and off.runtime.hints == "off: --no-hints"
    monkeypatch.setenv("EDGEMRI_HINTS", "0")
    env_off = Predictor.load(int8)
    assert env_off.engine.xnnpack() is True and "EDGEMRI_HINTS" in env_off.runtime.hints
    assert Predictor.load(int8, hints=True).engine.xnnpack() is False  # the explicit argument wins
    monkeypatch.setenv("EDGEMRI_HINTS", "maybe")
    with pytest.raises(UsageError, match="EDGEMRI_HINTS"):
        Predictor.load(int8)


@runtime
def test_explicit_settings_win_over_hints(int8, monkeypatch):
    with_hints(int8, backend="litert", threads=1, options={"xnnpack": False})
    both = Predictor.load(int8, threads=2)
    assert both.engine.threads == 2 and both.engine.xnnpack() is False  # threads explicit, xnnpack hinted
    assert Predictor.load(int8, options={"xnnpack": True}).engine.xnnpack() is True
    monkeypatch.setenv("EDGEMRI_XNNPACK", "1")  # the environment override beats the hints too
    assert Predictor.load(int8).engine.xnnpack() is True


@runtime
def test_predict_cli_no_hints_flag_and_runtime_in_title(int8, tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "scan.png"
    Image.fromarray(np.full((20, 20), 90, np.uint8)).save(image)
    with_hints(int8, backend="litert", threads=1, options={"xnnpack": False})
    assert main(["predict", str(int8), str(image)]) == 0
    assert "xnnpack off" in capsys.readouterr().out
    assert main(["predict", str(int8), str(image), "--no-hints"]) == 0
    out = capsys.readouterr().out
    assert "xnnpack on" in out and "hints: off" in out


@runtime
def test_hints_tuned_on_another_cpu_still_run_and_say_so(int8, tmp_path, capsys):
    from PIL import Image

    from edgemri.bench.machine import cpu_model

    image = tmp_path / "scan.png"
    Image.fromarray(np.full((20, 20), 90, np.uint8)).save(image)
    here = {"machine": {"cpu": cpu_model(), "cores": 2}}
    with_hints(int8, backend="litert", threads=1, options={"xnnpack": False}, measured=here)
    same = Predictor.load(int8)
    assert same.runtime.tuned_elsewhere is None and "tuned_on" not in same.info()["runtime"]
    elsewhere = {"machine": {"cpu": "Some Other CPU 9000", "cores": 2}}
    with_hints(int8, backend="litert", threads=1, options={"xnnpack": False}, measured=elsewhere)
    other = Predictor.load(int8)
    assert other.runtime.hints == "used" and other.engine.xnnpack() is False  # still applied
    assert other.info()["runtime"]["tuned_on"] == "Some Other CPU 9000"
    assert main(["predict", str(int8), str(image)]) == 0
    title = " ".join(capsys.readouterr().out.split())  # rich wraps the table title
    assert "tuned on Some Other CPU 9000, not this CPU (retune: edgemri tune)" in title


@runtime
def test_hints_for_this_cpu_win_over_hints_tuned_elsewhere(int8):
    from edgemri.bench.machine import cpu_model

    here = {"backend": "litert", "threads": 1, "options": {"xnnpack": False},
            "measured": {"machine": {"cpu": cpu_model()}}}
    with_hints(int8, backend="litert", threads=2, options={"xnnpack": True},
               measured={"machine": {"cpu": "Some Other CPU 9000"}},
               machines=["not an entry", {"threads": 1, "bogus": 3}, here])
    predictor = Predictor.load(int8)
    assert predictor.engine.xnnpack() is False and predictor.engine.threads == 1  # this CPU's entry
    assert predictor.runtime.hints == "used" and predictor.runtime.tuned_elsewhere is None


@runtime
def test_same_cpu_name_with_another_isa_is_another_cpu(int8):
    """Two machines both called "AMD EPYC" (AVX2-only Zen 3, AVX-512 VNNI Zen 5) keep hints of their own."""
    from edgemri.bench.machine import cpu_isa, cpu_model

    name, isa = cpu_model(), cpu_isa()
    other_isa = "avx2" if isa != "avx2" else "amx"
    mine = {"backend": "litert", "threads": 1, "options": {"xnnpack": False},
            "measured": {"machine": {"cpu": name, "isa": isa}}}
    legacy = {"backend": "litert", "threads": 2, "options": {"xnnpack": True}, "measured": {"machine": {"cpu": name}}}
    with_hints(int8, backend="litert", threads=2, options={"xnnpack": True},
               measured={"machine": {"cpu": name, "isa": other_isa}}, machines=[legacy, mine])
    hints = Manifest.load(sidecar_path(int8)).runtime
    assert hints.for_cpu(name, isa).options == {"xnnpack": False}  # name + tier beat the name alone
    assert hints.for_cpu(name, "neon").threads == 2 and hints.for_cpu(name, "neon").isa is None  # legacy: name only
    predictor = Predictor.load(int8)
    assert predictor.engine.xnnpack() is False and predictor.runtime.tuned_elsewhere is None
    with_hints(int8, backend="litert", threads=2, options={"xnnpack": True},
               measured={"machine": {"cpu": name, "isa": other_isa}})
    assert Predictor.load(int8).runtime.tuned_elsewhere == f"{name} ({other_isa})"  # same name, other tier
    merged = RuntimeHints(**mine).merged_with(RuntimeHints(backend="litert", threads=2, measured={
        "machine": {"cpu": name, "isa": other_isa}}))
    assert [m["measured"]["machine"] for m in merged.machines] == [{"cpu": name, "isa": isa}]


def test_cpu_isa_reads_the_best_tier_of_the_flags():
    from edgemri.bench.machine import cpu_isa

    zen3 = {"sse4_2", "avx", "avx2", "fma"}
    assert cpu_isa(zen3) == "avx2"
    assert cpu_isa(zen3 | {"avx512f", "avx512_vnni", "avx512_bf16"}) == "avx512-vnni"
    assert cpu_isa(zen3 | {"avx512f", "avx512_vnni", "amx_tile", "amx_int8"}) == "amx"
    assert cpu_isa({"fp", "asimd", "asimddp"}) == "neon-dotprod"  # a Pi 5's Cortex-A76
    assert cpu_isa(set()) is None


def test_reports_name_the_cpu_with_its_tier_where_recorded():
    from edgemri.bench.machine import describe_machine, machine_name

    assert machine_name({"cpu": "AMD EPYC", "isa": "avx512-vnni"}) == "AMD EPYC [avx512-vnni]"
    assert machine_name({"cpu": "AMD EPYC"}) == "AMD EPYC"  # reports written before the tier was recorded
    assert "isa" in describe_machine()


@runtime
def test_tuning_on_a_new_cpu_keeps_the_other_cpus_hints(int8):
    from edgemri.bench.machine import cpu_model

    other = {"machine": {"cpu": "Some Other CPU 9000"}, "p50_ms": 1.0}
    with_hints(int8, backend="litert", threads=2, options={"xnnpack": False}, measured=other)
    for _ in range(2):  # the second tuning on this CPU replaces the first, it does not pile up
        [result] = tune(int8, threads=[1], runs=2, warmup=0, n_images=2)
        for copy in (Manifest.load(sidecar_path(int8)), read_embedded(int8)):
            hints = copy.runtime
            assert hints.cpu == cpu_model().strip() and hints.threads == 1
            assert hints.options == result.winner.options
            assert [m["measured"]["machine"]["cpu"] for m in hints.machines] == ["Some Other CPU 9000"]
            assert hints.machines[0]["threads"] == 2 and hints.machines[0]["options"] == {"xnnpack": False}
            assert hints.for_cpu("Some Other CPU 9000").threads == 2
            assert hints.for_cpu("a third CPU").threads == 1  # unknown CPU: the top-level (latest) hints


@runtime
def test_hinted_backend_not_installed_falls_back_with_a_warning(int8, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` raises ImportError
    with_hints(int8, backend="openvino", threads=1, options={"performance_hint": "LATENCY"})
    with caplog.at_level(logging.WARNING, logger="edgemri.runtime"):
        predictor = Predictor.load(int8)
    assert predictor.backend == "litert" and predictor.runtime.hints.startswith("ignored")
    assert any("did not load" in r.getMessage() and "openvino" in r.getMessage() for r in caplog.records)
    assert predictor.predict_pixels(np.zeros((1, 16, 16, 3), np.uint8)).shape == (1, 3)


@runtime
def test_unusable_hints_are_dropped_never_fatal(int8, caplog):
    with_hints(int8, backend="tensorrt", threads=2)
    with caplog.at_level(logging.WARNING, logger="edgemri.runtime"):
        unknown = Predictor.load(int8)
    assert unknown.backend == "litert" and "unknown backend" in unknown.runtime.hints
    with_hints(int8, backend="litert", threads="four",
               options={"xnnpack": "no", "turbo": True, "precision": "bf16"})
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edgemri.runtime"):
        odd = Predictor.load(int8)
    assert odd.runtime.hints == "used" and odd.runtime.options == {} and odd.engine.threads is None
    messages = " ".join(r.getMessage() for r in caplog.records)
    for word in ("xnnpack", "turbo", "precision", "threads"):
        assert word in messages


@runtime
def test_bad_explicit_options_are_one_line_usage_errors(int8, tiny_models):
    cases = [(int8, {"xnnpack": "no"}, "True, False"), (int8, {"turbo": 1}, "xnnpack"),
             (tiny_models.onnx, {"graph_optimization": "fast"}, "basic, extended, all")]
    for path, options, named in cases:
        with pytest.raises(UsageError) as err:
            Predictor.load(path, options=options)
        line = err.value.one_line()
        assert "\n" not in line and named in line
    with pytest.raises(UsageError, match="OpenVINO models only"):
        Predictor.load(int8, precision="bf16")


# -- the benchmark shows the hints it ran with, and tune's winner and losers ------------------------
@runtime
def test_bench_worker_runs_with_the_hints_and_the_report_shows_the_tuning(int8, tmp_path):
    from PIL import Image

    from edgemri.bench.report import tables, to_markdown
    from edgemri.bench.run import run_worker

    tune(int8, threads=[1], runs=2, warmup=0, n_images=2)
    image = tmp_path / "scan.png"
    Image.fromarray(np.full((20, 20), 90, np.uint8)).save(image)
    row = run_worker({"name": "tflite-int8", "kind": "artifact", "path": str(int8), "images": [str(image)],
                      "threads": 1, "runs": 2, "warmup": 0, "predict": False}, timeout=120)
    assert row["status"] == "ok", row.get("reason")
    assert row["tuning"]["runtime"]["hints"] == "used"
    assert len(row["tuning"]["tune"]["candidates"]) == 2
    report = {"rows": [row], "eval": {"classes": []}}
    [(_, _, rows)] = [t for t in tables(report) if t[0].startswith("Runtime tuning")]
    assert [r[4] for r in rows].count("WINNER") == 1 and len(rows) == 2
    assert rows[0][5].startswith("hints used") and "Runtime tuning" in to_markdown(report)


def test_precision_is_an_explicit_openvino_opt_in_named_in_the_output(tiny_models, tmp_path, capsys):
    pytest.importorskip("openvino")
    from PIL import Image

    image = tmp_path / "scan.png"
    Image.fromarray(np.full((20, 20), 90, np.uint8)).save(image)
    model = tiny_models.openvino
    assert Predictor.load(model).engine.options()["precision"] == "f32"
    reduced = Predictor.load(model, precision="bf16")
    assert reduced.engine.options()["precision"] == "bf16" and reduced.runtime.options == {"precision": "bf16"}
    assert main(["predict", str(model), str(image), "--precision", "bf16"]) == 0
    assert "bf16 precision (opt-in" in capsys.readouterr().out
    assert main(["predict", str(model), str(image), "--precision", "fp8"]) == 2
    assert "f32, bf16, f16" in capsys.readouterr().err


def _int8_vs_fp32_module():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "int8_vs_fp32.py"
    spec = importlib.util.spec_from_file_location("int8_vs_fp32", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_int8_vs_fp32_table_ratios_use_each_artifacts_winner_and_its_recorded_hints(tmp_path):
    table = _int8_vs_fp32_module()

    def cand(threads, xnnpack, ms):
        return {"threads": threads, "options": {"xnnpack": xnnpack}, "p50_ms": ms}

    int8 = [cand(1, True, 3.0), cand(1, False, 1.0)]
    results = {"tflite-fp32": {"winner": cand(2, True, 2.0), "candidates": []},
               "tflite-int8": {"winner": int8[1], "candidates": int8}}
    (tmp_path / "export" / "tflite-int8").mkdir(parents=True)
    (tmp_path / "export" / "tflite-int8" / "model.tflite.json").write_text(
        json.dumps({"runtime": {"backend": "litert", "threads": 1, "options": {"xnnpack": True}}}))
    [row] = table.rows(tmp_path, results)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:] == ["2.00 (2t XNNPACK)", "1.00 (1t builtin)", "**0.50x**", "3.00 (1t XNNPACK)", "1.50x"]
    with pytest.raises(SystemExit, match="--target tflite-fp32"):
        table.rows(tmp_path, {"tflite-int8": results["tflite-int8"]})
    from edgemri.bench.machine import cpu_model  # hints tuned on this CPU win over the top level

    here = {"threads": 1, "options": {"xnnpack": False}, "measured": {"machine": {"cpu": cpu_model()}}}
    (tmp_path / "export" / "tflite-int8" / "model.tflite.json").write_text(json.dumps({"runtime": {
        "backend": "litert", "threads": 1, "options": {"xnnpack": True},
        "measured": {"machine": {"cpu": "Some Other CPU"}}, "machines": [here]}}))
    [row] = table.rows(tmp_path, results)
    assert [c.strip() for c in row.strip("|").split("|")][5:] == ["1.00 (1t builtin)", "0.50x"]


def test_cli_defaults_are_the_library_defaults():
    import inspect

    from edgemri.bench import tune as tune_module
    from edgemri.bench.cli import tune_command

    params = inspect.signature(tune_command).parameters
    assert params["runs"].default.default == tune_module.DEFAULT_RUNS
    assert params["warmup"].default.default == tune_module.DEFAULT_WARMUP
    assert params["images"].default.default == tune_module.DEFAULT_IMAGES
