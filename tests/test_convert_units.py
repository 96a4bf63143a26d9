"""Conversion pieces that need no trained model: the target table, calibration sampling, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgemri.cli import main
from edgemri.convert.calibration import stratified_indices
from edgemri.convert.context import ConvertOptions, exc_summary
from edgemri.convert.targets import TARGETS, resolve
from edgemri.convert.verify import compare
from edgemri.errors import UsageError
from edgemri.runtime.formats import FORMATS


def test_every_target_writes_its_formats_file_and_int8_names_are_quantized() -> None:
    for name, target in TARGETS.items():
        fmt = FORMATS.get(target.format)
        assert target.artifact(Path("E")).as_posix() == f"E/{name}/{fmt.filename}"
        assert fmt.filename == f"model{target.suffix}"
        assert "int8" not in name or target.quantized


def test_dynamic_range_is_quantized_but_keeps_float_io_and_the_quantized_gate() -> None:
    """Dynamic-range quantizes weights only: gated like a quantized target, yet it is not an int8 model
    (the int8 aims of `edgemri compare` judge tflite-int8, whose I/O is int8)."""
    dynamic, int8 = TARGETS.get("tflite-dynamic"), TARGETS.get("tflite-int8")
    assert dynamic.quantized and dynamic.max_prob_diff is None
    assert dynamic.thresholds(ConvertOptions()) == int8.thresholds(ConvertOptions()) == (0.98, None)


def test_thresholds_follow_options_by_target_property() -> None:
    openvino, tflite = TARGETS.get("openvino"), TARGETS.get("tflite-fp32")
    assert openvino.thresholds(ConvertOptions()) == (0.995, 1e-3)
    assert openvino.thresholds(ConvertOptions(ov_fp16=True)) == (0.995, 0.05)  # float16 weights
    assert tflite.thresholds(ConvertOptions(ov_fp16=True)) == (0.995, 1e-3)  # --ov-fp16 does not touch it
    assert tflite.thresholds(ConvertOptions(min_agreement=0.5)) == (0.5, 1e-3)
    honouring = [t.name for t in TARGETS.entries() if t.max_prob_diff_fp16 is not None]
    assert honouring == ["openvino"]  # openvino-int8 is written without fp16 compression


def test_resolve_expands_all_and_rejects_unknown_with_suggestion() -> None:
    assert [t.name for t in resolve(["all"])] == TARGETS.names()
    assert [t.name for t in resolve(["onnx", "tflite-fp32", "onnx"])] == ["onnx", "tflite-fp32"]
    with pytest.raises(UsageError) as err:
        resolve(["tflite-int"])
    assert 'Did you mean "tflite-int8"' in err.value.one_line()  # the registry puts it in the hint


def test_unknown_target_is_one_line_cli_error(tmp_path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "model.keras").write_bytes(b"x")
    assert main(["convert", str(tmp_path), "--target", "onnx-int9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "onnx-int8" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("n", [1, 7, 10, 25])
def test_stratified_indices_keep_class_shares(n: int) -> None:
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    idx = stratified_indices(labels, n, seed=1)
    assert len(idx) == n and len(set(idx.tolist())) == n
    counts = np.bincount(labels[idx], minlength=3)
    if n >= 3:
        assert (counts >= 1).all()
        assert counts[0] >= counts[1] >= counts[2]
    assert np.array_equal(idx, stratified_indices(labels, n, seed=1))


def test_stratified_indices_take_everything_when_asked_for_more() -> None:
    assert stratified_indices(np.array([0, 1, 1]), 300).tolist() == [0, 1, 2]


def test_compare_flags_disagreement_and_prob_diff() -> None:
    labels = np.array([0, 1, 1, 0])
    ref = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    same = compare(labels, ref, ref.copy(), 0.99, 1e-3)
    assert same["status"] == "ok" and same["top1_agreement"] == 1.0 and same["accuracy_delta"] == 0.0
    flipped = ref.copy()
    flipped[3] = [0.4, 0.6]
    bad = compare(labels, ref, flipped, 0.99, 1e-3)
    assert bad["status"] == "failed-verification"
    assert "agreement 0.7500" in bad["reason"] and "max prob diff" in bad["reason"]
    assert bad["accuracy_delta"] == pytest.approx(-0.25)


def test_exc_summary_picks_the_informative_line() -> None:
    assert exc_summary(ValueError("in user code:\n\n  File x\n  real problem")) == "ValueError: real problem"
    assert exc_summary(RuntimeError("first\nsecond")) == "RuntimeError: first"


def test_convert_help_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = ("import sys; from edgemri.cli import main; main(['convert', '--help']); main(['inspect', '--help']); "
            "bad = [m for m in ('tensorflow', 'keras', 'onnx', 'openvino', 'tf2onnx', 'nncf') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
