"""`edgemri --help`, `edgemri predict` and `import edgemri.runtime` never import the heavy stacks.

Each command runs in a fresh interpreter that writes its final ``sys.modules`` to a file, so the
check sees exactly what a user's process would have loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.runtime

HEAVY = ("tensorflow", "keras", "tf_keras", "onnx", "openvino", "torch", "jax")

SCRIPT = """
import atexit, json, os, sys
def dump():
    with open(os.environ["MODULES_OUT"], "w") as f:
        json.dump(sorted(sys.modules), f)
atexit.register(dump)
mode = sys.argv[1]
if mode == "import":
    import edgemri.runtime, edgemri.runtime.predictor, edgemri.runtime.embed, edgemri.runtime.backends
else:
    from edgemri.cli import main
    sys.exit(main(sys.argv[2:]))
"""


def _modules(tmp_path, *args: str) -> tuple[int, list[str]]:
    out = tmp_path / "modules.json"
    env = {**os.environ, "MODULES_OUT": str(out)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *args], check=False, env=env, capture_output=True, text=True,
                          timeout=120)
    assert out.exists(), proc.stderr
    return proc.returncode, json.loads(out.read_text())


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY]


@pytest.mark.parametrize("args", [["import"], ["cli", "--help"], ["cli", "predict", "--help"]])
def test_help_and_import_stay_light(tmp_path, args):
    rc, modules = _modules(tmp_path, *args)
    assert rc == 0
    assert _heavy(modules) == []
    assert "edgemri.runtime" in modules


@pytest.mark.parametrize("which,engine", [("tflite_int8", "ai_edge_litert"), ("onnx", "onnxruntime")])
def test_predict_stays_light(tiny_models, tmp_path, which, engine):
    img = tmp_path / "x.png"
    Image.fromarray(np.full((20, 20), 90, np.uint8)).save(img)
    rc, modules = _modules(tmp_path, "cli", "predict", str(getattr(tiny_models, which)), str(img), "--json")
    assert rc == 0
    assert engine in modules  # the prediction really ran through the engine
    assert _heavy(modules) == []
