"""PreciseBN (Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021): recompute BN statistics.

During training the moving statistics track *augmented* batches under weights that keep changing;
at inference the model sees clean images under the final weights. On ConvMixer after a few epochs the
gap is large enough that inference mode predicts one class while training mode is fine. Re-estimating
the statistics on clean training images with the current weights closes the gap; it runs before every
validation, so validation, the checkpoint and the exported model all use the same statistics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgemri.runtime.manifest import InputSpec
from edgemri.train.arrays import normalize_batch


def recalibrate_bn(model: Any, pixels: np.ndarray, spec: InputSpec, batch_size: int, batches: int,
                   seed: int = 0) -> int:
    """Set every trainable BN layer's moving mean/variance to the average over ``batches`` clean batches.

    Momentum k/(k+1) on batch k makes the moving value the exact running average. Frozen BN layers
    (fine-tuning) keep their statistics: Keras runs them in inference mode. Returns batches used.
    """
    bns = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization" and layer.trainable]
    if not bns or batches <= 0 or len(pixels) < 2:
        return 0
    order = np.random.default_rng([seed, 7]).permutation(len(pixels))
    n = min(batches, max(1, len(pixels) // batch_size))
    saved = [layer.momentum for layer in bns]
    try:
        for k in range(n):
            for layer in bns:
                layer.momentum = k / (k + 1.0)  # k=0: take this batch's statistics outright
            idx = order[k * batch_size:(k + 1) * batch_size]
            model(normalize_batch(pixels[idx], spec), training=True)
    finally:
        for layer, momentum in zip(bns, saved):
            layer.momentum = momentum
    return n
