"""End-to-end conversion: one tiny trained run, every target converted ONCE, many assertions.

Also the option paths (--nchw, --per-tensor) and the bad-input paths that need a real run
(mismatched manifest, truncated model, missing model) on copies of the same run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgemri.cli import main
from edgemri.convert.api import convert
from edgemri.convert.inspect import inspect_model
from edgemri.convert.targets import TARGETS
from edgemri.runtime.embed import read_embedded
from edgemri.runtime.manifest import Manifest, sidecar_path

pytestmark = pytest.mark.slow

FLOAT_TARGETS = ("tflite-fp32", "tflite-fp16", "onnx", "openvino")


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory, make_run):
    run = make_run(tmp_path_factory.mktemp("conv"))
    rc = main(["convert", str(run.root), "--target", "all", "--calib", "24", "--min-agreement", "0.5"])
    results = {t: json.loads((run.export_dir / t / "verification.json").read_text())
               for t in TARGETS.names() if (run.export_dir / t / "verification.json").is_file()}
    return run, rc, results


def copy_run(run, dest: Path) -> Path:
    """A copy of the run without its exports (for option and bad-input variants)."""
    shutil.copytree(run.root, dest, ignore=shutil.ignore_patterns("export", "qat"))
    return dest


def test_every_target_converts_and_verifies(converted) -> None:
    _, rc, results = converted
    assert set(results) == set(TARGETS.names())
    for name, record in results.items():
        assert record["status"] == "ok", (name, record["reason"])
        assert record["images"] > 0 and 0.0 <= record["top1_agreement"] <= 1.0
        assert record["accuracy_delta"] == pytest.approx(record["accuracy"] - record["fp32_accuracy"])
    assert rc == 0


def test_float_targets_match_fp32_closely(converted) -> None:
    _, _, results = converted
    for name in FLOAT_TARGETS:
        assert results[name]["top1_agreement"] == 1.0, name
        assert results[name]["max_prob_diff"] <= TARGETS.get(name).max_prob_diff, name


def test_artifacts_carry_sidecar_and_embedded_manifest(converted) -> None:
    run, _, _ = converted
    for target in TARGETS.items():
        name, t = target
        path = t.artifact(run.export_dir)
        assert path.is_file(), name
        sidecar = Manifest.load(sidecar_path(path))
        embedded = read_embedded(path)
        assert embedded is not None, name
        assert sidecar.classes == embedded.classes == run.manifest().classes
        assert sidecar.format == embedded.format == name.split("-")[0]
        assert sidecar.provenance["target"] == name
        assert sidecar.extra["verification"]["status"] == "ok"
    assert not list(run.export_dir.rglob("*.tmp*")), "no temporary files left behind"


def test_tflite_int8_is_full_integer_with_read_back_params(converted) -> None:
    run, _, _ = converted
    path = TARGETS.get("tflite-int8").artifact(run.export_dir)
    manifest = Manifest.load(sidecar_path(path))
    info = inspect_model(path)
    assert manifest.input.dtype == manifest.output.dtype == "uint8"  # the default --io: what MediaPipe takes
    assert info["inputs"][0]["dtype"] == info["outputs"][0]["dtype"] == "uint8"
    assert manifest.input.quantization.scale == pytest.approx(info["inputs"][0]["quantization"]["scale"])
    assert manifest.output.quantization.zero_point == info["outputs"][0]["quantization"]["zero_point"]
    assert manifest.extra["source"] == "ptq"
    assert sum(manifest.extra["calibration"]["per_class"].values()) == 24


def test_tflite_artifacts_use_builtin_ops_only(converted) -> None:
    run, _, _ = converted
    for name in ("tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8"):
        info = inspect_model(TARGETS.get(name).artifact(run.export_dir))
        assert not info["flex_ops"] and not info["custom_ops"], name
        assert "CONV_2D" in info["op_counts"]
    dynamic = Manifest.load(sidecar_path(TARGETS.get("tflite-dynamic").artifact(run.export_dir)))
    assert dynamic.input.dtype == "float32" and "dynamic-range" in dynamic.extra["weights"]


def test_quantized_onnx_and_openvino_contain_quant_nodes(converted) -> None:
    run, _, _ = converted
    onnx_info = inspect_model(TARGETS.get("onnx-int8").artifact(run.export_dir))
    assert onnx_info["op_counts"].get("QuantizeLinear", 0) > 0
    assert onnx_info["op_counts"].get("DequantizeLinear", 0) > 0
    assert inspect_model(TARGETS.get("onnx").artifact(run.export_dir))["qdq_nodes"] == 0
    ov_info = inspect_model(TARGETS.get("openvino-int8").artifact(run.export_dir))
    assert ov_info["fake_quantize"] > 0
    assert inspect_model(TARGETS.get("openvino").artifact(run.export_dir))["fake_quantize"] == 0


def test_runtime_predictor_agrees_with_recorded_verification(converted) -> None:
    from edgemri.convert.source import split_arrays
    from edgemri.runtime.predictor import Predictor

    run, _, results = converted
    pixels, labels = split_arrays(run, "val")
    for name in ("tflite-int8", "onnx-int8"):
        probs = Predictor.load(TARGETS.get(name).artifact(run.export_dir)).predict_pixels(pixels)
        assert float((probs.argmax(1) == labels).mean()) == pytest.approx(results[name]["accuracy"])


def test_inspect_cli_prints_ops_and_flags(converted, capsys: pytest.CaptureFixture) -> None:
    run, _, _ = converted
    assert main(["inspect", str(TARGETS.get("tflite-int8").artifact(run.export_dir))]) == 0
    out = capsys.readouterr().out
    assert "CONV_2D" in out and "int8" in out and "per-channel" in out
    assert main(["inspect", "--json", str(TARGETS.get("onnx").artifact(run.export_dir))]) == 0
    assert json.loads(capsys.readouterr().out)["inputs"][0]["shape"][1:] == [32, 32, 3]


def test_nchw_onnx_and_per_tensor_int8(converted, tmp_path: Path) -> None:
    run, _, _ = converted
    root = copy_run(run, tmp_path / "run")
    results = convert(root, ["onnx", "tflite-int8"], calib=12, nchw=True, per_tensor=True, min_agreement=0.5,
                      progress=False)
    assert [r.status for r in results] == ["ok", "ok"], [r.reason for r in results]
    onnx_path, tfl_path = results[0].path, results[1].path
    assert Manifest.load(sidecar_path(onnx_path)).input.layout == "NCHW"
    assert inspect_model(onnx_path)["inputs"][0]["shape"][1:] == [3, 32, 32]
    assert results[0].verification["top1_agreement"] == 1.0
    assert inspect_model(tfl_path)["per_channel_ops"] == []


def test_mismatched_manifest_fails_that_target_with_one_line(converted, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    run, _, _ = converted
    root = copy_run(run, tmp_path / "run")
    data = json.loads((root / "manifest.json").read_text())
    data["classes"] = data["classes"] + ["extra"]
    (root / "manifest.json").write_text(json.dumps(data))
    rc = main(["convert", str(root), "--target", "tflite-fp32", "--calib", "8"])
    err = capsys.readouterr().err
    assert rc != 0
    assert "5 classes" in err and "tflite-fp32" in err
    assert not (root / "export" / "tflite-fp32").exists(), "failed target leaves no artifact"


def test_truncated_model_and_missing_run_are_one_line_errors(converted, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    run, _, _ = converted
    root = copy_run(run, tmp_path / "run")
    data = (root / "model.keras").read_bytes()
    (root / "model.keras").write_bytes(data[: len(data) // 2])
    assert main(["convert", str(root), "--target", "onnx", "--target", "tflite-fp32"]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.keras" in err and "truncated" in err and len(err.splitlines()) == 1, err
    assert not (root / "export").exists()
    assert main(["convert", str(tmp_path / "nope"), "--target", "onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "not found" in err and len(err.splitlines()) == 1


def test_truncated_artifact_inspect_is_one_line(converted, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run, _, _ = converted
    for name in ("tflite-fp32", "onnx"):
        src = TARGETS.get(name).artifact(run.export_dir)
        bad = tmp_path / src.name
        bad.write_bytes(src.read_bytes()[:200])
        assert main(["inspect", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("arch, options", [
    ("mobilenetv2", {"alpha": 0.35}),
    ("convmixer-edge", {"dim": 32, "depth": 2, "kernel": 5, "patch": 4}),
])
def test_every_target_converts_the_edge_architectures(tmp_path: Path, arch: str, options: dict, make_run) -> None:
    """MobileNetV2 and ConvMixer (edge variant), the two architectures the project ships, reach every target.

    The agreement gate is off (a 3-epoch synthetic model sits near chance, where int8 flips ties);
    float targets still have to match FP32 within their max-probability gates.
    """
    run = make_run(tmp_path, arch=arch, arch_options=options, epochs=3)
    rc = main(["convert", str(run.root), "--target", "all", "--calib", "16", "--min-agreement", "0"])
    assert rc == 0
    for name in TARGETS.names():
        record = json.loads((run.export_dir / name / "verification.json").read_text())
        assert record["status"] == "ok", (arch, name, record["reason"])
    for name in FLOAT_TARGETS:
        record = json.loads((run.export_dir / name / "verification.json").read_text())
        assert record["max_prob_diff"] <= TARGETS.get(name).max_prob_diff, (arch, name)
    report = inspect_model(run.export_dir / "tflite-int8" / "model.tflite")
    assert report["flex_ops"] == [] and report["custom_ops"] == []  # builtin int8 ops only
    assert report["inputs"][0]["dtype"] == "uint8" and report["outputs"][0]["dtype"] == "uint8"
