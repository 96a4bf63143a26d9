"""Classification metrics in plain numpy, shared by training, verification and benchmarks.

No scikit-learn: the base install (and the Pi) has numpy only. Every function takes integer
labels ``y_true`` (N,) and probabilities ``probs`` (N, C).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def _safe_div(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


def roc_auc_binary(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve via the rank statistic (ties averaged); nan if one class only."""
    y = np.asarray(y, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score), dtype=np.float64)
    sorted_scores = np.asarray(score)[order]
    i = 0
    while i < len(score):  # average ranks over ties
        j = i
        while j + 1 < len(score) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Binary: AUC of the positive (last) class. Multi-class: macro one-vs-rest AUC."""
    probs = np.asarray(probs)
    if probs.shape[1] == 2:
        return roc_auc_binary(np.asarray(y_true) == 1, probs[:, 1])
    aucs = [roc_auc_binary(np.asarray(y_true) == c, probs[:, c]) for c in range(probs.shape[1])]
    aucs = [a for a in aucs if not np.isnan(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE with equal-width confidence bins."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def classification_report(y_true: np.ndarray, probs: np.ndarray, classes: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Everything ``metrics.json`` and the benchmark report hold, JSON-ready."""
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    n = len(classes)
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, n)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    recall = _safe_div(tp, support)  # sensitivity
    precision = _safe_div(tp, predicted)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    tn = cm.sum() - support - predicted + tp
    specificity = _safe_div(tn, tn + predicted - tp)
    present = support > 0
    per_class = {
        name: {
            "precision": float(precision[i]), "recall": float(recall[i]), "sensitivity": float(recall[i]),
            "specificity": float(specificity[i]), "f1": float(f1[i]), "support": int(support[i]),
        }
        for i, name in enumerate(classes)
    }
    return {
        "n": len(y_true),
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else float("nan"),
        "balanced_accuracy": float(recall[present].mean()) if present.any() else float("nan"),
        "macro_precision": float(precision[present].mean()) if present.any() else float("nan"),
        "macro_recall": float(recall[present].mean()) if present.any() else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "roc_auc": roc_auc(y_true, probs),
        "ece": expected_calibration_error(y_true, probs),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "classes": list(classes),
    }


def agreement(reference_probs: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """How closely an artifact follows the full-precision model on the same inputs."""
    ref = np.asarray(reference_probs, dtype=np.float64)
    got = np.asarray(probs, dtype=np.float64)
    return {
        "top1_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
        "max_prob_diff": float(np.abs(ref - got).max()) if ref.size else 0.0,
        "mean_prob_diff": float(np.abs(ref - got).mean()) if ref.size else 0.0,
    }
