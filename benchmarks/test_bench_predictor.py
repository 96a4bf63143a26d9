"""The predictor end to end: image file -> decode -> preprocess -> inference -> probabilities.

This is what ``edgemri predict`` does per image once the model is loaded; the tiny model keeps
inference negligible, so the figure is mostly the runtime's own cost per file (224 px input
resized to the model's 16 px: the resize is the one real-size step).
"""

from __future__ import annotations

import pytest


@pytest.mark.benchmark(group="predictor end to end")
@pytest.mark.parametrize("fmt", ["tflite_int8", "tflite_fp32", "onnx", "openvino"])
def test_predict_file(benchmark, tiny_models, image_files, fmt):
    package = {"onnx": "onnxruntime", "openvino": "openvino"}.get(fmt, "ai_edge_litert")
    pytest.importorskip(package, reason=f"{package} not installed")
    from edgemri.runtime.predictor import Predictor

    pred = Predictor.load(getattr(tiny_models, fmt), threads=1)
    path = image_files["jpg224"]
    result = benchmark(pred.predict, [path])
    assert len(result) == 1 and result[0].label in pred.classes
    assert set(result[0].timings) >= {"decode", "preprocess", "inference"}


@pytest.mark.benchmark(group="predictor end to end")
def test_predict_array(benchmark, tiny_models, mri_like_image):
    """Same, from an already decoded array (a camera frame on Android/Pi): no file decode."""
    pytest.importorskip("ai_edge_litert")
    from edgemri.runtime.predictor import Predictor

    pred = Predictor.load(tiny_models.tflite_int8, threads=1)
    result = benchmark(pred.predict_one, mri_like_image)
    assert result.label in pred.classes and result.timings["decode"] == 0.0
