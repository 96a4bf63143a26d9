"""The Raspberry Pi install: the base wheel + ai-edge-litert in a fresh venv classifies an image.

Builds the edgemri wheel, installs exactly it and ``ai-edge-litert`` (pip resolves numpy, pillow,
typer, rich) into a new virtual environment with no access to this one, and runs
``edgemri predict`` there on a tflite model. TensorFlow must not be installed there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

CHECK_ABSENT = ("import importlib.util as u; "
                "print([m for m in ('tensorflow', 'keras', 'onnx', 'onnxruntime', 'openvino') if u.find_spec(m)])")


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=600, **kw)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_base_wheel_plus_litert_predicts_without_tensorflow(tmp_path, tiny_models):
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(REPO), "-w", str(wheels)])
    (wheel,) = wheels.glob("edgemri-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py, edgemri = venv / "bin" / "python", venv / "bin" / "edgemri"
    _run([str(py), "-m", "pip", "install", "-q", str(wheel), "ai-edge-litert"])
    missing = _run([str(py), "-c", CHECK_ABSENT])
    assert missing.stdout.strip() == "[]"

    img = tmp_path / "scan.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 40), dtype=np.uint8)).save(img)
    proc = _run([str(edgemri), "predict", str(tiny_models.tflite_int8), str(img), "--json", "--top", "3"],
                cwd=tmp_path)
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["label"] in tiny_models.manifest.classes and len(row["top"]) == 3
    assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    # The same answer as in the development environment.
    from edgemri.runtime.predictor import Predictor

    expected = Predictor.load(tiny_models.tflite_int8).predict_one(img)
    assert row["label"] == expected.label
    assert row["confidence"] == pytest.approx(expected.confidence, abs=1e-5)
