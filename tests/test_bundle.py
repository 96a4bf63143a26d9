"""`edgemri bundle`: layout, fixtures that replay through the runtime, errors, --android, zip.

The runs hold the committed tiny TFLite exports (conftest ``make_export_run``), so these tests need
no TensorFlow (``pytest -m runtime``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgemri.cli import main
from edgemri.runtime.manifest import Manifest, sidecar_path

pytestmark = pytest.mark.runtime  # the committed tiny TFLite models (tests/data) and the runtime install


def _classes(run: Path) -> tuple[str, ...]:
    """The class names of the run's exports (the committed tiny models')."""
    return Manifest.load(sidecar_path(run / "export/tflite-int8/model.tflite")).classes


def test_bundle_layout_and_fixtures_replay(tmp_path, make_export_run, varied_images):
    from edgemri.runtime.predictor import Predictor
    from edgemri.runtime.preprocess import preprocess

    run = make_export_run(tmp_path)
    images = varied_images(tmp_path / "imgs")
    out = tmp_path / "bundle"
    assert main(["bundle", str(run), "--target", "tflite-int8", "--out", str(out), "--images", str(tmp_path / "imgs"),
                 "--fixtures", "10"]) == 0
    for name in ("model.tflite", "manifest.json", "labels.txt", "README.md", "bundle.json", "fixtures/fixtures.json"):
        assert (out / name).is_file(), name
    assert (out / "model.tflite").read_bytes() == (run / "export/tflite-int8/model.tflite").read_bytes()
    assert (out / "labels.txt").read_text().split() == list(_classes(run))
    manifest = Manifest.load(out / "manifest.json")
    assert manifest.input.dtype == "int8" and manifest.input.quantization is not None

    fx = json.loads((out / "fixtures/fixtures.json").read_text())
    entries = fx["fixtures"]
    # every source image, plus the 4 variants of the first
    assert len(entries) == len(images) + 4
    assert {e["mode"] for e in entries} >= {"L", "RGB", "RGBA"}
    pred = Predictor.load(out / "model.tflite", manifest=out / "manifest.json")
    for e in entries:
        x = preprocess(out / "fixtures" / e["image"], pred.input_spec)
        assert (out / "fixtures" / e["input"]).read_bytes() == x.astype("<i1").tobytes()
        raw = np.frombuffer((out / "fixtures" / e["output"]).read_bytes(), dtype="<i1").reshape(e["output_shape"])
        assert raw.tobytes() == pred.run_raw(x).tobytes()
        probs = np.asarray(e["probabilities"], dtype=np.float32)
        assert abs(probs.sum() - 1) < 1e-5
        assert e["ranking"][0] == int(np.argmax(probs)) and e["predicted"] == manifest.classes[e["ranking"][0]]
    # the zip holds the same files
    with zipfile.ZipFile(tmp_path / "bundle.zip") as zf:
        names = set(zf.namelist())
    assert "bundle/model.tflite" in names and "bundle/fixtures/fixtures.json" in names
    assert len(names) == sum(1 for p in out.rglob("*") if p.is_file())


def test_bundle_takes_fixtures_from_val_split(tmp_path, make_export_run):
    from edgemri.data.discover import discover
    from edgemri.data.split import make_split

    run = make_export_run(tmp_path)
    data = tmp_path / "data"
    rng = np.random.default_rng(3)
    for label in _classes(run):
        (data / label).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(data / label / f"{i}.png")
    make_split(discover(data), val_fraction=0.5, seed=0).save(run / "split.json")
    out = tmp_path / "b"
    assert main(["bundle", str(run), "--out", str(out), "--fixtures", "3", "--no-zip"]) == 0
    entries = json.loads((out / "fixtures/fixtures.json").read_text())["fixtures"]
    labels = [e["label"] for e in entries if "variant" not in e["source"]]
    assert sorted(labels) == sorted(_classes(run))  # round-robin: one per class
    assert not (tmp_path / "b.zip").exists()


def test_missing_artifact_is_one_line_error_naming_convert(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    rc = main(["bundle", str(run), "--target", "tflite-int8", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1
    assert "model.tflite not found" in err and f"edgemri convert {run} --target tflite-int8" in err
    assert not (tmp_path / "o").exists()


def test_bad_target_and_foreign_out_dir_refused(tmp_path, capsys, make_export_run):
    run = make_export_run(tmp_path)
    assert main(["bundle", str(run), "--target", "onnx", "--out", str(tmp_path / "o")]) != 0
    assert "TFLite" in capsys.readouterr().err
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("do not delete")
    assert main(["bundle", str(run), "--out", str(foreign), "--fixtures", "0"]) != 0
    assert "not an edgemri bundle" in capsys.readouterr().err
    assert (foreign / "thesis.txt").read_text() == "do not delete"


def test_missing_sidecar_and_unreadable_split(tmp_path, capsys, make_export_run):
    run = make_export_run(tmp_path)
    sidecar_path(run / "export/tflite-int8/model.tflite").unlink()
    assert main(["bundle", str(run), "--out", str(tmp_path / "o")]) != 0
    assert "manifest" in capsys.readouterr().err
    run2 = make_export_run(tmp_path / "second")
    assert main(["bundle", str(run2), "--out", str(tmp_path / "o2")]) != 0  # no split.json, no --images
    err = capsys.readouterr().err
    assert "--images" in err and not (tmp_path / "o2").exists()


def test_android_copies_assets(tmp_path, make_export_run):
    run = make_export_run(tmp_path)
    project = tmp_path / "android-demo"
    (project / "app/src/main").mkdir(parents=True)
    out = tmp_path / "bundle"
    assert main(["bundle", str(run), "--out", str(out), "--fixtures", "0", "--no-zip", "--android",
                 "--android-project", str(project)]) == 0
    assets = project / "app/src/main/assets"
    for name in ("model.tflite", "manifest.json", "labels.txt"):
        assert (assets / name).read_bytes() == (out / name).read_bytes()
    # re-bundling into a previous bundle folder is allowed and replaces it
    assert main(["bundle", str(run), "--out", str(out), "--fixtures", "0", "--no-zip"]) == 0


def test_bundle_module_imports_no_heavy_libraries():
    code = ("import sys, edgemri.bundle; bad = [m for m in ('tensorflow', 'keras', 'numpy', 'onnx', 'openvino') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("target", ["tflite-fp32"])
def test_float_bundle(tmp_path, target, make_export_run, varied_images):
    run = make_export_run(tmp_path)
    varied_images(tmp_path / "imgs")
    out = tmp_path / "f"
    assert main(["bundle", str(run), "--target", target, "--out", str(out), "--images", str(tmp_path / "imgs"),
                 "--fixtures", "2", "--no-zip"]) == 0
    fx = json.loads((out / "fixtures/fixtures.json").read_text())
    assert fx["input"]["dtype"] == "float32"
    e = fx["fixtures"][0]
    spec = Manifest.load(out / "manifest.json").input
    assert (out / "fixtures" / e["input"]).stat().st_size == spec.height * spec.width * spec.channels * 4


def test_plain_bundle_writes_no_web_page(tmp_path, make_export_run):
    """--web is opt-in: without it the bundle is what it was (no page, no vendored MediaPipe)."""
    from edgemri.bundle import VENDOR_DIR, WEB_FILES

    run = make_export_run(tmp_path)
    out = tmp_path / "b"
    assert main(["bundle", str(run), "--out", str(out), "--fixtures", "0", "--no-zip"]) == 0
    assert not any((out / name).exists() for name in WEB_FILES) and not (out / VENDOR_DIR).exists()
    assert "web" not in json.loads((out / "bundle.json").read_text())
    assert "Browser" not in (out / "README.md").read_text()
