"""Verification: does the artifact still say what the FP32 Keras model says?

The run's validation images go through the artifact exactly as a deployment would run it (the
runtime's ``Predictor``: sidecar manifest, preprocessing, quantized I/O, postprocessing) and
through the Keras model; we record accuracy, accuracy delta, top-1 agreement and max probability
difference, and compare with the target's thresholds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from edgemri.runtime.manifest import Manifest
from edgemri.runtime.preprocess import postprocess, to_model_input

from edgemri.metrics import agreement


def artifact_probs(path: Path, pixels: np.ndarray) -> np.ndarray:
    """Probabilities of an artifact on prepared uint8 pixels, through the runtime Predictor."""
    try:
        from edgemri.runtime.predictor import Predictor
    except ImportError:  # runtime engineer's Predictor not landed yet: minimal local runner
        return _fallback_probs(path, pixels)
    return np.asarray(Predictor.load(path).predict_pixels(pixels), dtype=np.float32)


def _fallback_probs(path: Path, pixels: np.ndarray) -> np.ndarray:
    from edgemri.runtime.manifest import sidecar_path

    manifest = Manifest.load(sidecar_path(path))
    run = _RUNNERS[path.suffix](path)
    outs = [postprocess(run(to_model_input(pixels[i:i + 1], manifest.input)), manifest.output)
            for i in range(len(pixels))]
    return np.concatenate(outs).astype(np.float32)


def _tflite_runner(path: Path) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=os.fspath(path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        interp.set_tensor(inp, x)
        interp.invoke()
        return interp.get_tensor(out).copy()

    return run


def _onnx_runner(path: Path) -> Any:
    import onnxruntime as ort

    sess = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


def _openvino_runner(path: Path) -> Any:
    import openvino as ov

    compiled = ov.Core().compile_model(os.fspath(path), "CPU")
    return lambda x: np.asarray(compiled(x)[0])


_RUNNERS = {".tflite": _tflite_runner, ".onnx": _onnx_runner, ".xml": _openvino_runner}


def compare(labels: np.ndarray, ref_probs: np.ndarray, probs: np.ndarray, min_agreement: float,
            max_prob_diff: float | None) -> dict[str, Any]:
    """The verification record: figures, thresholds, status and why."""
    agree = agreement(ref_probs, probs)
    acc = float((probs.argmax(1) == labels).mean()) if len(labels) else float("nan")
    ref_acc = float((ref_probs.argmax(1) == labels).mean()) if len(labels) else float("nan")
    problems = []
    if agree["top1_agreement"] < min_agreement:
        problems.append(f"top-1 agreement {agree['top1_agreement']:.4f} < {min_agreement}")
    if max_prob_diff is not None and agree["max_prob_diff"] > max_prob_diff:
        problems.append(f"max prob diff {agree['max_prob_diff']:.2e} > {max_prob_diff}")
    return {
        "status": "failed-verification" if problems else "ok",
        "reason": "; ".join(problems) or None,
        "images": len(labels),
        "split": "val",
        "accuracy": acc,
        "fp32_accuracy": ref_acc,
        "accuracy_delta": acc - ref_acc,
        **agree,
        "thresholds": {"min_agreement": min_agreement, "max_prob_diff": max_prob_diff},
    }
