"""Conversion pieces that need no trained model: the target table, calibration sampling, errors."""

from __future__ import annotations

import numpy as np
import pytest

from edgemri.cli import main
from edgemri.convert import cli as convert_cli
from edgemri.convert.calibration import stratified_indices
from edgemri.convert.context import exc_summary
from edgemri.convert.targets import TARGETS, resolve
from edgemri.convert.verify import compare
from edgemri.errors import UsageError


def test_cli_target_names_match_the_table() -> None:
    assert tuple(TARGETS.names()) == convert_cli.TARGET_NAMES
    for name, target in TARGETS.items():
        assert target.artifact(__import__("pathlib").Path("E")).as_posix() == f"E/{name}/model{target.suffix}"
        assert "int8" not in name or target.quantized
    assert "int8" not in TARGETS.get("tflite-dynamic").name


def test_resolve_expands_all_and_rejects_unknown_with_suggestion() -> None:
    assert [t.name for t in resolve(["all"])] == TARGETS.names()
    assert [t.name for t in resolve(["onnx", "tflite-fp32", "onnx"])] == ["onnx", "tflite-fp32"]
    with pytest.raises(UsageError, match='Did you mean "tflite-int8"'):
        resolve(["tflite-int"])


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
