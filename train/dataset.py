"""Training batches from cached uint8 arrays: a keras.utils.PyDataset, so it runs on every backend.

Shuffling and augmentation draw from a generator seeded by (seed, epoch, batch), never from global
state: an interrupted and resumed run sees exactly the batches the uninterrupted run would have.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgemri.runtime.manifest import InputSpec
from edgemri.train.arrays import normalize_batch
from edgemri.train.augment import AugmentConfig, augment_batch


def make_train_dataset(pixels: np.ndarray, labels: np.ndarray, spec: InputSpec, batch_size: int,
                       augment: AugmentConfig, seed: int, class_weights: dict[int, float] | None) -> Any:
    """Build the PyDataset lazily (importing Keras only here)."""
    import keras

    class TrainBatches(keras.utils.PyDataset):
        """(x float32, y int64, sample_weight float32) batches; call ``set_epoch`` before each epoch."""

        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            weights = np.ones(len(labels), np.float32)
            if class_weights:
                weights = np.array([class_weights[int(y)] for y in labels], np.float32)
            self.weights = weights
            self.order = np.arange(len(labels))
            self.epoch = 0
            n = len(labels)
            # A trailing batch of one sample makes BatchNorm statistics meaningless: drop it.
            self.n_batches = max(1, n // batch_size + (1 if n % batch_size > 1 else 0))

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch
            self.order = np.random.default_rng([seed, epoch]).permutation(len(labels))

        def __len__(self) -> int:
            return self.n_batches

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            idx = self.order[index * batch_size:(index + 1) * batch_size]
            rng = np.random.default_rng([seed, self.epoch, index, 1])
            x = normalize_batch(augment_batch(pixels[idx], augment, rng), spec)
            return x, labels[idx].astype(np.int64), self.weights[idx]

    return TrainBatches()
