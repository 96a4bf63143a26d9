"""The Android core (plain Java) against the Python runtime, on the JVM: android-demo/core/run-tests.sh.

Fixtures come from `edgemri bundle` (the committed tiny int8 and fp32 TFLite models, images of
varied modes and sizes) plus preprocessing-only sets over every manifest option (gray/gray3/rgb,
NHWC/NCHW, int8/uint8/float32, bilinear/nearest, shrinking and enlarging, exact 2x ties). JUnit
must pass and report every int tensor identical byte for byte.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgemri.cli import main
from edgemri.runtime.manifest import InputSpec, Manifest, Quantization
from edgemri.runtime.preprocess import preprocess

ROOT = Path(__file__).resolve().parents[1]
RUN_TESTS = ROOT / "android-demo" / "core" / "run-tests.sh"
JUNIT = Path(os.environ.get("JUNIT_JAR", "/usr/share/java/junit4.jar"))

pytestmark = [
    pytest.mark.runtime,  # the committed tiny models, the runtime install and a JDK: no TensorFlow
    pytest.mark.skipif(not (shutil.which("javac") and shutil.which("java") and JUNIT.is_file()),
                       reason="needs a JDK (javac, java) and JUnit 4 (apt-get install default-jdk-headless junit4)"),
]


def run_junit(build: Path, *fixture_dirs: Path) -> subprocess.CompletedProcess:
    """run-tests.sh on the fixture folders; classes compiled once per ``build`` folder."""
    env = {**os.environ, "BUILD_DIR": str(build)}
    env.pop("EDGEMRI_FIXTURES", None)
    return subprocess.run(["bash", str(RUN_TESTS), *map(str, fixture_dirs)], check=False, capture_output=True, text=True,
                          env=env, timeout=300)


def parity_line(proc: subprocess.CompletedProcess) -> dict[str, float]:
    match = re.search(r"PARITY (.*)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    return {k: float(v) for k, v in (kv.split("=") for kv in match.group(1).split())}


def preprocessing_fixtures(folder: Path, spec: InputSpec, seed: int) -> int:
    """Random images (varied sizes, gray/RGB/RGBA) with the Python input tensors; no model needed."""
    folder.mkdir(parents=True)
    manifest = Manifest(task="parity", classes=("a", "b"), input=spec, format="tflite")
    manifest.save(folder / "manifest.json")
    rng = np.random.default_rng(seed)
    shapes = [(spec.height * 2, spec.width * 2), (7, 9), (150, 41), (spec.height, spec.width), (33, 120)]
    entries = []
    for i, (h, w) in enumerate(shapes):
        channels = (None, 3, 4)[i % 3]
        shape = (h, w) if channels is None else (h, w, channels)
        arr = rng.integers(0, 256, shape, dtype=np.uint8)
        if i == 0:  # smooth integer image halved exactly: weights are k/8, sums land on .5 ties
            arr = (np.add.outer(np.arange(h), np.arange(w)) % 256).astype(np.uint8)
        name = f"img{i}"
        Image.fromarray(arr).save(folder / f"{name}.png")
        x = preprocess(folder / f"{name}.png", manifest)
        (folder / f"{name}.bin").write_bytes(x.astype(x.dtype.newbyteorder("<")).tobytes())
        entries.append({"name": name, "image": f"{name}.png", "input": f"{name}.bin"})
    (folder / "fixtures.json").write_text(json.dumps(
        {"schema": "edgemri.fixtures", "version": 1, "manifest": "manifest.json", "fixtures": entries}))
    return len(entries)


PRE_SPECS = [
    {"color": "gray3", "layout": "NHWC", "dtype": "int8", "resize": "bilinear"},
    {"color": "gray", "layout": "NHWC", "dtype": "int8", "resize": "bilinear"},
    {"color": "rgb", "layout": "NCHW", "dtype": "uint8", "resize": "bilinear"},
    {"color": "rgb", "layout": "NHWC", "dtype": "int8", "resize": "nearest"},
    {"color": "gray", "layout": "NCHW", "dtype": "float32", "resize": "bilinear"},
    {"color": "gray3", "layout": "NHWC", "dtype": "float32", "resize": "nearest"},
]


def _spec(i: int, opts: dict) -> InputSpec:
    quant = None
    if opts["dtype"] != "float32":
        quant = Quantization(0.0078125 if i % 2 else 1 / 127.5, -1 if opts["dtype"] == "int8" else 127)
    return InputSpec(height=24 + 4 * i, width=20 + 6 * i, channels=1 if opts["color"] == "gray" else 3,
                     quantization=quant, **opts)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, make_export_run, varied_images):
    tmp = tmp_path_factory.mktemp("android-core")
    run = make_export_run(tmp / "t")
    images = tmp / "imgs"
    varied_images(images)
    out = {}
    for target in ("tflite-int8", "tflite-fp32"):
        dest = tmp / target
        assert main(["bundle", str(run), "--target", target, "--out", str(dest), "--images", str(images),
                     "--fixtures", "10", "--no-zip"]) == 0
        out[target] = dest / "fixtures"
    n_pre = 0
    for i, opts in enumerate(PRE_SPECS):
        n_pre += preprocessing_fixtures(tmp / f"pre{i}", _spec(i, opts), seed=i)
    out["pre"] = [tmp / f"pre{i}" for i in range(len(PRE_SPECS))]
    out["n_pre"] = n_pre
    out["build"] = tmp / "jvm-build"
    return out


def test_java_core_matches_python_runtime(bundles, tmp_path):
    proc = run_junit(bundles["build"], bundles["tflite-int8"], bundles["tflite-fp32"], *bundles["pre"])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"^OK \(\d+ tests\)", proc.stdout, re.MULTILINE), proc.stdout
    stats = parity_line(proc)
    n_bundle = sum(len(json.loads((bundles[t] / "fixtures.json").read_text())["fixtures"])
                   for t in ("tflite-int8", "tflite-fp32"))
    int_pre = sum(5 for opts in PRE_SPECS if opts["dtype"] != "float32")
    assert stats["fixtures"] == n_bundle + bundles["n_pre"]
    assert stats["outputs"] == n_bundle
    assert stats["int_exact"] == n_bundle // 2 + int_pre  # every int8/uint8 tensor identical
    assert stats["float_max_abs_diff"] <= 1e-6 and stats["prob_max_abs_diff"] <= 1e-6


def test_parity_test_detects_a_one_value_difference(bundles, tmp_path):
    """The JVM test must fail when one quantized input value differs (it compares, not just runs)."""
    broken = tmp_path / "broken"
    shutil.copytree(bundles["tflite-int8"].parent, broken)
    entry = json.loads((broken / "fixtures/fixtures.json").read_text())["fixtures"][1]
    tensor = bytearray((broken / "fixtures" / entry["input"]).read_bytes())
    tensor[len(tensor) // 2] = (tensor[len(tensor) // 2] + 1) % 256
    (broken / "fixtures" / entry["input"]).write_bytes(bytes(tensor))
    proc = run_junit(bundles["build"], broken / "fixtures")
    assert proc.returncode != 0
    assert f"{entry['name']}: 1 of {len(tensor)} int8 input values differ" in proc.stdout


def test_manifest_mismatch_is_reported_by_java(bundles, tmp_path):
    """A manifest that disagrees with itself (int8 without quantization) is refused with the file named."""
    broken = tmp_path / "m"
    shutil.copytree(bundles["tflite-int8"].parent, broken)
    data = json.loads((broken / "manifest.json").read_text())
    data["input"] = {**data["input"], "quantization": None}
    (broken / "manifest.json").write_text(json.dumps(data))
    proc = run_junit(bundles["build"], broken / "fixtures")
    assert proc.returncode != 0
    assert "manifest.json: input is int8 but the manifest has no input.quantization" in proc.stdout

