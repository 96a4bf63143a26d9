"""`edgemri bundle`: layout, fixtures that replay through the runtime, errors, --android, zip."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgemri.cli import main
from edgemri.runtime.manifest import InputSpec, Manifest, OutputSpec, Quantization, sidecar_path

SIZE = 32
CLASSES = ("glioma", "meningioma", "notumor")


# -- shared helpers (test_android_core imports these) ----------------------------------------------
@functools.cache
def tiny_tflite(root: str, color: str = "gray3") -> dict[str, Path]:
    """A tiny Keras model converted to TFLite full-int8 and fp32, each with its sidecar manifest."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    channels = 1 if color == "gray" else 3
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, channels), name="image")
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    prob = keras.layers.Dense(len(CLASSES), activation="softmax", name="head")(x)
    model = keras.Model(inp, prob, name="tiny")
    kernel, bias = model.get_layer("head").get_weights()
    model.get_layer("head").set_weights([kernel * 8.0, bias])  # separate the classes
    base = Manifest(task="brain-test", classes=CLASSES, input=InputSpec(SIZE, SIZE, channels, color=color),
                    arch="tiny-cnn", format="tflite")
    rng = np.random.default_rng(1)

    def representative():
        for _ in range(16):
            pix = rng.integers(0, 256, (1, SIZE, SIZE, channels))
            yield [(pix * base.input.scale + base.input.offset).astype(np.float32)]

    out = Path(root) / color
    paths = {}
    for target in ("tflite-fp32", "tflite-int8"):
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        if target == "tflite-int8":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = representative
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        path = out / "export" / target / "model.tflite"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(conv.convert())
        manifest = base
        if target == "tflite-int8":
            interp = Interpreter(model_path=str(path))
            (iscale, izero) = interp.get_input_details()[0]["quantization"]
            (oscale, ozero) = interp.get_output_details()[0]["quantization"]
            manifest = base.replace(
                input=dataclasses.replace(base.input, dtype="int8", quantization=Quantization(iscale, izero)),
                output=OutputSpec(dtype="int8", quantization=Quantization(oscale, ozero)))
        manifest.save(sidecar_path(path))
        paths[target] = path
    return paths


@functools.cache
def _model_cache() -> str:
    """One scratch folder per test process for the tiny models (built once, removed at exit)."""
    import atexit
    import shutil
    import tempfile

    root = tempfile.mkdtemp(prefix="edgemri-tiny-tflite-")
    atexit.register(shutil.rmtree, root, True)
    return root


def varied_images(folder: Path) -> list[Path]:
    """PNG/JPEG images of varied modes and sizes: gray, RGB, RGBA, non-square, smaller and larger."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:97, 0:61]
    blob = (120 + 100 * np.sin(yy / 9.0) * np.cos(xx / 7.0)).clip(0, 255).astype(np.uint8)
    specs = [
        ("gray-large-tall.png", blob, "L"),
        ("gray-small.png", rng.integers(0, 256, (13, 19), dtype=np.uint8), "L"),
        ("rgb-wide.png", rng.integers(0, 256, (40, 75, 3), dtype=np.uint8), "RGB"),
        ("rgb-exact.png", rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8), "RGB"),
        ("rgba-odd.png", rng.integers(0, 256, (45, 33, 4), dtype=np.uint8), "RGBA"),
        ("photo.jpg", np.dstack([blob, blob[::-1], blob[:, ::-1]]), "RGB"),
    ]
    paths = []
    for name, arr, _mode in specs:
        path = folder / name
        Image.fromarray(arr).save(path)
        paths.append(path)
    return paths


def make_run(tmp_path: Path, color: str = "gray3") -> Path:
    """A run directory holding the tiny exports (no model.keras: bundle only needs the export)."""
    built = tiny_tflite(_model_cache(), color)
    run = tmp_path / "run"
    for target, path in built.items():
        dest = run / "export" / target
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "model.tflite").write_bytes(path.read_bytes())
        sidecar_path(dest / "model.tflite").write_bytes(sidecar_path(path).read_bytes())
    return run


# -- tests ------------------------------------------------------------------------------------------
def test_bundle_layout_and_fixtures_replay(tmp_path):
    from edgemri.runtime.predictor import Predictor
    from edgemri.runtime.preprocess import preprocess

    run = make_run(tmp_path)
    images = varied_images(tmp_path / "imgs")
    out = tmp_path / "bundle"
    assert main(["bundle", str(run), "--target", "tflite-int8", "--out", str(out), "--images", str(tmp_path / "imgs"),
                 "--fixtures", "10"]) == 0
    for name in ("model.tflite", "manifest.json", "labels.txt", "README.md", "bundle.json", "fixtures/fixtures.json"):
        assert (out / name).is_file(), name
    assert (out / "model.tflite").read_bytes() == (run / "export/tflite-int8/model.tflite").read_bytes()
    assert (out / "labels.txt").read_text().split() == list(CLASSES)
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
        assert e["ranking"][0] == int(np.argmax(probs)) and e["predicted"] == CLASSES[e["ranking"][0]]
    # the zip holds the same files
    with zipfile.ZipFile(tmp_path / "bundle.zip") as zf:
        names = set(zf.namelist())
    assert "bundle/model.tflite" in names and "bundle/fixtures/fixtures.json" in names
    assert len(names) == sum(1 for p in out.rglob("*") if p.is_file())


def test_bundle_takes_fixtures_from_val_split(tmp_path):
    from edgemri.data.discover import discover
    from edgemri.data.split import make_split

    run = make_run(tmp_path)
    data = tmp_path / "data"
    rng = np.random.default_rng(3)
    for label in CLASSES:
        (data / label).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(data / label / f"{i}.png")
    make_split(discover(data), val_fraction=0.5, seed=0).save(run / "split.json")
    out = tmp_path / "b"
    assert main(["bundle", str(run), "--out", str(out), "--fixtures", "3", "--no-zip"]) == 0
    entries = json.loads((out / "fixtures/fixtures.json").read_text())["fixtures"]
    labels = [e["label"] for e in entries if "variant" not in e["source"]]
    assert sorted(labels) == sorted(CLASSES)  # round-robin: one per class
    assert not (tmp_path / "b.zip").exists()


def test_missing_artifact_is_one_line_error_naming_convert(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    rc = main(["bundle", str(run), "--target", "tflite-int8", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1
    assert "model.tflite not found" in err and f"edgemri convert {run} --target tflite-int8" in err
    assert not (tmp_path / "o").exists()


def test_bad_target_and_foreign_out_dir_refused(tmp_path, capsys):
    run = make_run(tmp_path)
    assert main(["bundle", str(run), "--target", "onnx", "--out", str(tmp_path / "o")]) != 0
    assert "TFLite" in capsys.readouterr().err
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("do not delete")
    assert main(["bundle", str(run), "--out", str(foreign), "--fixtures", "0"]) != 0
    assert "not an edgemri bundle" in capsys.readouterr().err
    assert (foreign / "thesis.txt").read_text() == "do not delete"


def test_missing_sidecar_and_unreadable_split(tmp_path, capsys):
    run = make_run(tmp_path)
    sidecar_path(run / "export/tflite-int8/model.tflite").unlink()
    assert main(["bundle", str(run), "--out", str(tmp_path / "o")]) != 0
    assert "manifest" in capsys.readouterr().err
    run2 = make_run(tmp_path / "second")
    assert main(["bundle", str(run2), "--out", str(tmp_path / "o2")]) != 0  # no split.json, no --images
    err = capsys.readouterr().err
    assert "--images" in err and not (tmp_path / "o2").exists()


def test_android_copies_assets(tmp_path):
    run = make_run(tmp_path)
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
    import subprocess
    import sys

    code = ("import sys, edgemri.bundle; bad = [m for m in ('tensorflow', 'keras', 'numpy', 'onnx', 'openvino') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("target", ["tflite-fp32"])
def test_float_bundle(tmp_path, target):
    run = make_run(tmp_path)
    varied_images(tmp_path / "imgs")
    out = tmp_path / "f"
    assert main(["bundle", str(run), "--target", target, "--out", str(out), "--images", str(tmp_path / "imgs"),
                 "--fixtures", "2", "--no-zip"]) == 0
    fx = json.loads((out / "fixtures/fixtures.json").read_text())
    assert fx["input"]["dtype"] == "float32"
    e = fx["fixtures"][0]
    assert (out / "fixtures" / e["input"]).stat().st_size == SIZE * SIZE * 3 * 4
