"""Metrics against hand-computed values (and scikit-learn where it is installed)."""

from __future__ import annotations

import numpy as np
import pytest

from edgemri.metrics import (
    agreement,
    classification_report,
    confusion_matrix,
    expected_calibration_error,
    roc_auc,
)


def test_confusion_and_report_by_hand():
    y = np.array([0, 0, 1, 1, 2, 2])
    probs = np.eye(3)[[0, 1, 1, 1, 2, 0]] * 0.8 + 0.2 / 3
    rep = classification_report(y, probs, ["a", "b", "c"])
    assert rep["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert rep["accuracy"] == pytest.approx(4 / 6)
    assert rep["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert rep["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert rep["per_class"]["a"]["specificity"] == pytest.approx(3 / 4)


def test_binary_auc_and_ece():
    y = np.array([0, 0, 1, 1])
    score = np.array([0.1, 0.4, 0.35, 0.8])
    probs = np.stack([1 - score, score], axis=1)
    assert roc_auc(y, probs) == pytest.approx(0.75)
    perfect = np.eye(2)[y].astype(float)
    assert expected_calibration_error(y, perfect) == pytest.approx(0.0)


def test_against_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 200)
    probs = rng.dirichlet(np.ones(4), 200)
    probs[np.arange(200), y] += 0.3
    probs /= probs.sum(1, keepdims=True)
    rep = classification_report(y, probs, list("abcd"))
    assert rep["macro_f1"] == pytest.approx(sk.f1_score(y, probs.argmax(1), average="macro"))
    assert rep["roc_auc"] == pytest.approx(sk.roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    assert np.array_equal(confusion_matrix(y, probs.argmax(1), 4), sk.confusion_matrix(y, probs.argmax(1)))


def test_agreement():
    ref = np.array([[0.9, 0.1], [0.2, 0.8]])
    got = np.array([[0.6, 0.4], [0.7, 0.3]])
    a = agreement(ref, got)
    assert a["top1_agreement"] == 0.5
    assert a["max_prob_diff"] == pytest.approx(0.5)
