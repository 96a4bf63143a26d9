"""Training batches from cached uint8 arrays: a keras.utils.PyDataset, so it runs on every backend.

Shuffling and augmentation draw from a generator seeded by (seed, epoch, batch), never from global
state: an interrupted and resumed run sees exactly the batches the uninterrupted run would have, and
so does a run with any number of loader threads (Keras' ordered enqueuer hands batches over in
index order) or devices. OpenCV's warp releases the GIL, so threads (not processes: no pickling of
the cached arrays) scale with cores.

Several processes (multi-host data parallel): every process takes the same shuffled *global* batch
and keeps its contiguous slice (JAX assembles the global array from the slices in process order),
so the images of every step are those of a one-process run; each process augments only its slice,
with draws seeded by (seed, epoch, batch, process, processes): reproducible for a given process
count, and no process repeats another's augmentation work.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from edgemri.runtime.manifest import InputSpec
from edgemri.train.arrays import normalize_batch
from edgemri.train.augment import AugmentConfig, augment_batch


def batch_sizes(n: int, batch_size: int, replicas: int = 1) -> list[int]:
    """Global batch sizes of one epoch over ``n`` images.

    The trailing partial batch is kept when it has more than one image (one image makes BatchNorm
    statistics meaningless) and divides evenly over the ``replicas`` devices (the mesh shards it).
    """
    full, rest = divmod(n, batch_size)
    sizes = [batch_size] * full
    if rest > 1 and rest % replicas == 0:
        sizes.append(rest)
    return sizes or [min(n, batch_size)]


def make_train_dataset(pixels: np.ndarray, labels: np.ndarray, spec: InputSpec, batch_size: int,
                       augment: AugmentConfig, seed: int, class_weights: dict[int, float] | None,
                       shard: tuple[int, int] = (0, 1), replicas: int = 1, workers: int = 1,
                       classes: int | None = None, mixup: float = 0.0, cutmix: float = 0.0) -> Any:
    """Build the PyDataset lazily (importing Keras only here).

    ``batch_size`` is the global batch; ``shard`` = (this process, processes) picks this process's
    slice of it; ``workers`` loader threads (0: one per core); ``classes``: yield one-hot targets
    of that width (needed for ``mixup`` and ``cutmix``, which blend within this process's slice).
    """
    if (mixup > 0 or cutmix > 0) and not classes:
        raise ValueError("mixup and cutmix need one-hot targets: pass classes")
    import keras

    process, processes = shard
    threads = workers or os.cpu_count() or 1

    class TrainBatches(keras.utils.PyDataset):
        """(x float32, y int64, sample_weight float32) batches; call ``set_epoch`` before each epoch."""

        def __init__(self) -> None:
            super().__init__(workers=threads, use_multiprocessing=False, max_queue_size=max(10, 2 * threads))
            weights = np.ones(len(labels), np.float32)
            if class_weights:
                weights = np.array([class_weights[int(y)] for y in labels], np.float32)
            self.weights = weights
            self.order = np.arange(len(labels))
            self.epoch = 0
            self.sizes = batch_sizes(len(labels), batch_size, replicas)
            self.images = sum(self.sizes)  # global images per epoch (every process)

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch
            self.order = np.random.default_rng([seed, epoch]).permutation(len(labels))

        def __len__(self) -> int:
            return len(self.sizes)

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            size = self.sizes[index]
            idx = self.order[index * batch_size:index * batch_size + size]
            key = [seed, self.epoch, index, 1]
            if processes > 1:  # augment only this process's slice, with draws of its own
                idx = idx[process * size // processes:(process + 1) * size // processes]
                key += [process, processes]
            rng = np.random.default_rng(key)
            x = normalize_batch(augment_batch(pixels[idx], augment, rng), spec)
            if not classes:
                return x, labels[idx].astype(np.int64), self.weights[idx]
            y = np.eye(classes, dtype=np.float32)[labels[idx]]
            w = self.weights[idx]
            if (mixup > 0 or cutmix > 0) and len(idx) > 1:
                x, y, w = blend_batch(x, y, w, mixup, cutmix, rng)
            return x, y, w

    return TrainBatches()


def blend_batch(x: np.ndarray, y: np.ndarray, w: np.ndarray, mixup: float, cutmix: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mixup or CutMix for one batch; with both on, each batch picks one with probability 1/2 (timm's way)."""
    use_cutmix = cutmix > 0 and (mixup <= 0 or rng.random() < 0.5)
    return cut_batch(x, y, w, cutmix, rng) if use_cutmix else mix_batch(x, y, w, mixup, rng)


def cut_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """CutMix's box (top, bottom, left, right) of about ``(1 - lam)`` of the area, centre uniform, clipped."""
    ratio = np.sqrt(1.0 - lam)
    ch, cw = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    return (max(cy - ch // 2, 0), min(cy + ch // 2, height), max(cx - cw // 2, 0), min(cx + cw // 2, width))


def cut_batch(x: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CutMix (Yun et al., 2019): paste one box of a shuffled copy of the batch into every image.

    ``lam ~ Beta(a, a)`` is folded to >= 0.5 (the box covers at most half the image, so each row's
    own image dominates, as for mixup); targets and weights blend by the box's real area after
    clipping at the border, as in the paper and timm.
    """
    lam = float(rng.beta(alpha, alpha))
    lam = max(lam, 1.0 - lam)
    perm = rng.permutation(len(x))
    top, bottom, left, right = cut_box(x.shape[1], x.shape[2], lam, rng)
    out = x.copy()
    out[:, top:bottom, left:right] = x[perm, top:bottom, left:right]
    lam = 1.0 - (bottom - top) * (right - left) / (x.shape[1] * x.shape[2])
    return out, lam * y + (1.0 - lam) * y[perm], (lam * w + (1.0 - lam) * w[perm]).astype(np.float32)


def mix_batch(x: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mixup: ``lam * batch + (1 - lam) * batch[perm]`` for images, one-hot targets and weights.

    ``lam`` is folded to >= 0.5 (the pairs are symmetric, so nothing is lost) so that each row's
    own image dominates and the "accuracy" Keras reports on training batches stays meaningful.
    """
    lam = float(rng.beta(alpha, alpha))
    lam = max(lam, 1.0 - lam)
    perm = rng.permutation(len(x))
    mixed = (lam * x + (1.0 - lam) * x[perm]).astype(x.dtype)
    return mixed, lam * y + (1.0 - lam) * y[perm], (lam * w + (1.0 - lam) * w[perm]).astype(np.float32)
