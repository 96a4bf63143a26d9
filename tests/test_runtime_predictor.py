"""Predictor: manifest resolution and checks, int8 handling, batching, per-image predictions.

``runtime``-marked tests use only the committed tiny models (tests/data) and the runtime install;
the Keras and OpenVINO comparisons need the full install.
"""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from PIL import Image

from edgemri.errors import ImageDecodeError, ManifestError
from edgemri.runtime.manifest import InputSpec, Quantization, sidecar_path
from edgemri.runtime.predictor import Predictor
from edgemri.runtime.preprocess import prepare_pixels

runtime = pytest.mark.runtime


def _copy(src, dest_dir, sidecar=True):
    """Copy a model (and its .bin / sidecar) into ``dest_dir``; return the new path."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    shutil.copy(src, dest)
    if src.suffix == ".xml":
        shutil.copy(src.with_suffix(".bin"), dest.with_suffix(".bin"))
    if sidecar and sidecar_path(src).exists():
        shutil.copy(sidecar_path(src), sidecar_path(dest))
    return dest


@pytest.mark.parametrize("which,atol", [("tflite_fp32", 1e-5), ("onnx", 1e-5), ("openvino", 1e-5),
                                        ("tflite_int8", 0.03)])
def test_all_backends_agree_with_keras(tiny_models, which, atol):
    pixels = tiny_models.pixels(5)
    ref = tiny_models.keras_probs(pixels)
    pred = Predictor.load(getattr(tiny_models, which), threads=1)
    probs = pred.predict_pixels(pixels)
    assert probs.shape == (5, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, ref, atol=atol)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@runtime
def test_int8_and_onnx_agree_with_tflite_fp32(tiny_models):
    """TF-free: the quantized model within its quantization error of the float one, ONNX at float precision."""
    pixels = tiny_models.pixels(5)
    ref = Predictor.load(tiny_models.tflite_fp32, threads=1).predict_pixels(pixels)
    np.testing.assert_allclose(Predictor.load(tiny_models.onnx).predict_pixels(pixels), ref, atol=1e-5)
    np.testing.assert_allclose(Predictor.load(tiny_models.tflite_int8).predict_pixels(pixels), ref, atol=0.03)


@runtime
def test_int8_input_uses_the_models_own_quantization(tiny_models):
    pred = Predictor.load(tiny_models.tflite_int8)
    engine = pred.engine
    qin, qout = engine.input.quantization, engine.output.quantization
    assert pred.input_spec.quantization == qin and pred.output_spec.quantization == qout
    pixels = tiny_models.pixels(3)
    real = pixels.astype(np.float64) * tiny_models.manifest.input.scale + tiny_models.manifest.input.offset
    x = np.clip(np.rint(real / qin.scale) + qin.zero_point, -128, 127).astype(np.int8)
    raw = engine.run(x)
    manual = (raw.astype(np.float64) - qout.zero_point) * qout.scale
    manual /= manual.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(pred.predict_pixels(pixels), manual, atol=1e-6)


@runtime
def test_manifest_quantization_that_disagrees_with_the_model_is_an_error(tiny_models, tmp_path):
    path = _copy(tiny_models.tflite_int8, tmp_path, sidecar=False)
    q = tiny_models.int8_manifest.input.quantization
    wrong = dataclasses.replace(tiny_models.int8_manifest.input, quantization=Quantization(q.scale * 2, q.zero_point))
    tiny_models.int8_manifest.replace(input=wrong).save(sidecar_path(path))
    with pytest.raises(ManifestError, match="disagrees with the model"):
        Predictor.load(path)
    float_in = dataclasses.replace(tiny_models.int8_manifest.input, dtype="float32", quantization=None)
    tiny_models.int8_manifest.replace(input=float_in).save(sidecar_path(path))
    with pytest.raises(ManifestError, match="model input is int8"):
        Predictor.load(path)


@pytest.mark.parametrize("which", [pytest.param("tflite_embedded", marks=runtime),
                                   pytest.param("onnx_embedded", marks=runtime), "openvino_embedded"])
def test_embedded_only_manifest_works(tiny_models, which):
    path = getattr(tiny_models, which)
    assert not sidecar_path(path).exists()
    pred = Predictor.load(path)
    assert pred.manifest_source == "embedded manifest"
    assert pred.classes == tiny_models.manifest.classes
    assert pred.predict_pixels(tiny_models.pixels(2)).shape == (2, 3)


@runtime
def test_sidecar_wins_over_embedded(tiny_models, tmp_path):
    path = _copy(tiny_models.tflite_embedded, tmp_path)
    renamed = tiny_models.int8_manifest.replace(classes=("x", "y", "z"))
    renamed.save(sidecar_path(path))
    pred = Predictor.load(path)
    assert pred.classes == ("x", "y", "z") and pred.manifest_source.startswith("sidecar")
    assert pred.predict([tiny_models.pixels(1)[0]])[0].label in ("x", "y", "z")


@runtime
def test_explicit_manifest_wins_over_sidecar(tiny_models, tmp_path):
    other = tmp_path / "other.json"
    tiny_models.manifest.replace(classes=("p", "q", "r")).save(other)
    assert Predictor.load(tiny_models.onnx, manifest=other).classes == ("p", "q", "r")


@runtime
@pytest.mark.parametrize("change", [
    {"classes": ("a", "b")},
    {"classes": ("a", "b", "c", "d")},
    {"input": InputSpec(24, 24)},
    {"input": InputSpec(16, 16, layout="NCHW")},
])
def test_mismatched_manifest_is_an_error(tiny_models, tmp_path, change):
    path = _copy(tiny_models.onnx, tmp_path, sidecar=False)
    tiny_models.manifest.replace(**change).save(sidecar_path(path))
    with pytest.raises(ManifestError) as err:
        Predictor.load(path)
    assert str(path) in err.value.message and "\n" not in err.value.one_line()


@runtime
def test_no_manifest_says_how_to_get_one(tiny_models, tmp_path):
    path = _copy(tiny_models.plain("tflite_fp32"), tmp_path, sidecar=False)
    with pytest.raises(ManifestError) as err:
        Predictor.load(path)
    assert "model.tflite.json" in err.value.one_line() and "edgemri convert" in err.value.one_line()


def test_fixed_batch_model_loops_per_image(tiny_models):
    pred = Predictor.load(tiny_models.openvino)
    assert pred.engine.input.fixed_batch == 1
    pixels = tiny_models.pixels(5)
    np.testing.assert_allclose(pred.predict_pixels(pixels), tiny_models.keras_probs(pixels), atol=1e-5)


@runtime
def test_dynamic_batch_chunks_match_single_images(tiny_models):
    pred = Predictor.load(tiny_models.tflite_fp32)
    pixels = tiny_models.pixels(7)
    whole = pred.predict_pixels(pixels, batch_size=3)
    single = np.concatenate([pred.predict_pixels(p) for p in pixels])
    np.testing.assert_allclose(whole, single, atol=1e-6)
    with pytest.raises(ManifestError, match="uint8"):
        pred.predict_pixels(pixels.astype(np.float32))


@runtime
def test_predict_paths_and_arrays(tiny_models, tmp_path):
    pred = Predictor.load(tiny_models.tflite_int8, threads=1)
    pred.warmup(2)
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (40, 30), dtype=np.uint8)
    png = tmp_path / "a.png"
    Image.fromarray(img).save(png)
    from_path, from_array = pred.predict([png, img])
    assert from_path.path == str(png) and from_array.path is None
    np.testing.assert_array_equal(from_path.probabilities, from_array.probabilities)
    expected = pred.predict_pixels(prepare_pixels(img, pred.manifest.input))[0]
    np.testing.assert_allclose(from_path.probabilities, expected, atol=1e-7)
    assert from_path.label == pred.classes[int(np.argmax(expected))]
    assert set(from_path.timings) == {"decode", "preprocess", "inference", "postprocess"}
    assert from_path.timings["decode"] > 0 and from_array.timings["decode"] == 0
    top = from_path.top(3)
    assert top[0][0] == from_path.label and top[0][1] >= top[1][1] >= top[2][1]
    d = from_path.to_dict(top=2)
    assert set(d["probabilities"]) == set(pred.classes) and len(d["top"]) == 2
    info = pred.info()
    assert info["backend"] == "litert" and info["manifest"].startswith("sidecar") and info["threads"] == 1
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    with pytest.raises(ImageDecodeError, match="bad.png"):
        pred.predict([bad])
