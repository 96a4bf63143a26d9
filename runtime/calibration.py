"""Temperature scaling at run time, and the calibration metrics (ECE, Brier, reliability bins).

The exported graphs end in softmax, so the runtime scales *probabilities*: ``softmax(log p / T)``
equals ``softmax(z / T)`` for the logits ``z`` behind ``p`` (the unknown per-image constant in
``log p = z - logsumexp(z)`` cancels in the softmax), which keeps every exported graph and the
Android parity fixtures unchanged. The one place this is not exact is a probability that is
exactly 0: int8 outputs round anything below half a quantization step to 0 (30% of the brain
model's int8 probabilities on its val split). Such a zero is replaced by a quarter of the output
step, the mean of the values that round to it, before the log; float outputs use ``FLOAT_FLOOR``.
docs/runtime.md ("Safety net") has the measurements behind that choice.

numpy only: this module is part of the light runtime and is ported to Java
(android-demo/core ``Calibration.java``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgemri.runtime.manifest import OutputSpec

FLOAT_FLOOR = 1e-12
ZERO_STEP_FRACTION = 0.25  # a quantized 0 stands for [0, step/2): its mean is step/4
ECE_BINS = 15


def probability_floor(spec: OutputSpec) -> float:
    """The value a probability of exactly 0 stands for, given how the output was quantized."""
    if spec.dtype != "float32" and spec.quantization is not None:
        return float(spec.quantization.scale) * ZERO_STEP_FRACTION
    return FLOAT_FLOOR


def log_scores(values: np.ndarray, kind: str = "probabilities", floor: float = FLOAT_FLOOR) -> np.ndarray:
    """Logits (as given) or log-probabilities with zeros floored: what the temperature divides."""
    x = np.asarray(values, dtype=np.float64)
    if kind == "logits":
        return x
    return np.log(np.maximum(x, floor))


def softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, shifted by the row maximum so large scores cannot overflow."""
    z = np.asarray(x, dtype=np.float64)
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def apply_temperature(values: np.ndarray, temperature: float, kind: str = "probabilities",
                      floor: float = FLOAT_FLOOR) -> np.ndarray:
    """Calibrated probabilities (N, classes) float32: ``softmax(s / T)`` of the log scores.

    ``T == 1`` on probabilities returns them unchanged (bit for bit), so a manifest without a
    calibration section, or with T = 1, predicts exactly what it did before.
    """
    if not temperature > 0 or not np.isfinite(temperature):
        raise ValueError(f"temperature must be a positive finite number, not {temperature!r}")
    values = np.asarray(values)
    if temperature == 1.0 and kind == "probabilities":
        return values.astype(np.float32)
    return softmax(log_scores(values, kind, floor) / float(temperature)).astype(np.float32)


# -- metrics ---------------------------------------------------------------------------------------
def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (what temperature fitting minimises)."""
    p = np.asarray(probs, dtype=np.float64)[np.arange(len(labels)), np.asarray(labels)]
    return float(-np.mean(np.log(np.maximum(p, FLOAT_FLOOR)))) if len(labels) else float("nan")


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    """Multi-class Brier score: mean over images of sum_k (p_k - [k == y])^2 (0 is perfect, 2 worst)."""
    p = np.asarray(probs, dtype=np.float64)
    if not len(p):
        return float("nan")
    onehot = np.zeros_like(p)
    onehot[np.arange(len(p)), np.asarray(labels)] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, Any]]:
    """Equal-width confidence bins: count, mean confidence and accuracy of the top-1 class."""
    p = np.asarray(probs, dtype=np.float64)
    conf = p.max(axis=1) if len(p) else np.zeros(0)
    correct = (p.argmax(axis=1) == np.asarray(labels)) if len(p) else np.zeros(0, bool)
    idx = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        mask = idx == b
        n = int(mask.sum())
        out.append({"lo": b / bins, "hi": (b + 1) / bins, "count": n,
                    "confidence": float(conf[mask].mean()) if n else None,
                    "accuracy": float(correct[mask].mean()) if n else None})
    return out


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: the count-weighted mean |accuracy - confidence| over the bins."""
    rows = reliability(probs, labels, bins)
    total = sum(r["count"] for r in rows)
    if not total:
        return float("nan")
    return float(sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in rows if r["count"]) / total)


def ece_floor(probs: np.ndarray, draws: int = 200, seed: int = 0, bins: int = ECE_BINS) -> dict[str, float]:
    """The ECE a *perfectly* calibrated model with these confidences would show on this many images.

    ECE is biased upwards on small sets: with 94 test images (BUSI) even perfect probabilities
    read 0.05-0.08. Each draw marks image i correct with probability conf_i (what perfect
    calibration means for the top-1 class) and measures ECE with the same bins; ``mean`` and
    ``p95`` over the draws say whether a measured ECE is distinguishable from noise at this n.
    """
    p = np.asarray(probs, dtype=np.float64)
    if not len(p):
        return {"mean": float("nan"), "p95": float("nan"), "n": 0}
    conf = p.max(axis=1)
    idx = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    member = np.zeros((len(conf), bins))
    member[np.arange(len(conf)), idx] = 1.0
    correct = np.random.default_rng(seed).random((draws, len(conf))) < conf
    gaps = np.abs((correct - conf) @ member).sum(axis=1) / len(conf)
    return {"mean": float(gaps.mean()), "p95": float(np.quantile(gaps, 0.95)), "n": len(conf)}


def calibration_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """ECE, Brier, NLL and accuracy of one set of probabilities (for manifests and the bench)."""
    acc = float((np.asarray(probs).argmax(1) == np.asarray(labels)).mean()) if len(labels) else float("nan")
    return {"ece": ece(probs, labels), "brier": brier(probs, labels), "nll": nll(probs, labels), "accuracy": acc}
