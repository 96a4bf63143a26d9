"""Class weights for imbalanced sets (BUSI: 355 benign, 164 malignant, 107 normal)."""

from __future__ import annotations

import numpy as np


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """"Balanced" weights, ``n_samples / (n_classes * count_c)`` (scikit-learn's formula).

    Every class present weighs the same in the loss in total. A class with no samples gets
    weight 0.0 (it contributes nothing anyway) instead of dividing by zero; ``n_classes`` is
    the model's class count, so absent classes still appear as keys Keras expects.
    """
    labels = np.asarray(labels, dtype=np.int64).ravel()
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must be in [0, {n_classes}), got {labels.min()}..{labels.max()}")
    counts = np.bincount(labels, minlength=n_classes)
    present = int(np.count_nonzero(counts))
    return {c: (float(labels.size / (present * counts[c])) if counts[c] else 0.0) for c in range(n_classes)}
