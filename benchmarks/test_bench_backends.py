"""Each backend's inference on the same tiny model (batch 1), next to a bare engine call.

``run_raw`` is the backend alone (input already in the model's dtype); ``predict_pixels`` adds
the runtime's normalize/quantize and postprocess. The ``bare-litert`` rows call the
ai_edge_litert interpreter directly, so the runtime's overhead over a plain ``invoke()`` can be
read off the same JSON (issue target: under 10 % for a real model; on this 16 px model the
fixed per-call cost dominates, so the percentage is an upper bound).
"""

from __future__ import annotations

import numpy as np
import pytest

BACKEND_PACKAGE = {"tflite_fp32": "ai_edge_litert", "tflite_int8": "ai_edge_litert",
                   "onnx": "onnxruntime", "openvino": "openvino"}


def _predictor(tiny_models, fmt: str, threads: int = 1):
    pytest.importorskip(BACKEND_PACKAGE[fmt], reason=f"{BACKEND_PACKAGE[fmt]} not installed")
    from edgemri.runtime.predictor import Predictor

    return Predictor.load(getattr(tiny_models, fmt), threads=threads)


@pytest.mark.benchmark(group="backend run_raw")
@pytest.mark.parametrize("fmt", list(BACKEND_PACKAGE))
def test_run_raw(benchmark, tiny_models, fmt):
    from edgemri.runtime.preprocess import to_model_input

    pred = _predictor(tiny_models, fmt)
    x = to_model_input(tiny_models.pixels(1), pred.input_spec)
    out = benchmark(pred.run_raw, x)
    assert out.shape[-1] == len(pred.classes)
    benchmark.extra_info.update(backend=pred.backend, xnnpack=pred.info().get("xnnpack"))


@pytest.mark.benchmark(group="backend predict_pixels")
@pytest.mark.parametrize("fmt", list(BACKEND_PACKAGE))
def test_predict_pixels(benchmark, tiny_models, fmt):
    pred = _predictor(tiny_models, fmt)
    pixels = tiny_models.pixels(1)
    probs = benchmark(pred.predict_pixels, pixels)
    assert probs.shape == (1, len(pred.classes))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-3)


@pytest.mark.benchmark(group="backend run_raw")
@pytest.mark.parametrize("fmt", ["tflite_fp32", "tflite_int8"])
def test_bare_litert_invoke(benchmark, tiny_models, fmt):
    """The floor: set_tensor + invoke + get_tensor on the interpreter, no edgemri code."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    interp = litert.Interpreter(model_path=str(getattr(tiny_models, fmt)), num_threads=1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    x = np.zeros(inp["shape"], dtype=inp["dtype"])

    def invoke():
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        return interp.get_tensor(out["index"])

    assert benchmark(invoke).shape[-1] == 3
    benchmark.extra_info["backend"] = "bare-litert"


@pytest.mark.benchmark(group="backend load")
@pytest.mark.parametrize("fmt", list(BACKEND_PACKAGE))
def test_load(benchmark, tiny_models, fmt):
    """Predictor.load: open the file, read the manifest, validate it against the model."""
    _predictor(tiny_models, fmt)  # skip early, and import the backend outside the timing
    from edgemri.runtime.predictor import Predictor

    pred = benchmark(Predictor.load, getattr(tiny_models, fmt), threads=1)
    assert pred.classes
