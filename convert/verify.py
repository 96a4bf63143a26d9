"""Verification: does the artifact still say what the FP32 Keras model says?

The run's validation images go through the artifact exactly as a deployment would run it (the
runtime's ``Predictor``: sidecar manifest, preprocessing, quantized I/O, postprocessing) and
through the Keras model; we record accuracy, accuracy delta, top-1 agreement and max probability
difference, and compare with the target's thresholds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgemri.metrics import agreement


def artifact_probs(path: Path, pixels: np.ndarray) -> np.ndarray:
    """The artifact's own (uncalibrated) probabilities on prepared uint8 pixels, through the runtime."""
    return artifact_outputs(path, pixels)[0]


def artifact_outputs(path: Path, pixels: np.ndarray) -> tuple[np.ndarray, float]:
    """(uncalibrated probabilities, the floor a probability of 0 stands for) of one artifact.

    Uncalibrated: verification compares what the graph computes; the temperature fitted on these
    outputs afterwards (``edgemri.calibrate``) is what changes the probabilities a user sees.
    """
    from edgemri.runtime.calibration import probability_floor
    from edgemri.runtime.predictor import Predictor

    predictor = Predictor.load(path)
    probs = np.asarray(predictor.predict_pixels(pixels), dtype=np.float32)
    return probs, probability_floor(predictor.output_spec)


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
