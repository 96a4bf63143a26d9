"""Calibration images for post-training quantization.

Quantization ranges are only as good as the images they are measured on, so calibration uses
the run's own TRAIN split (never val: that is what verification measures), stratified per class
so a rare class still shapes the ranges, and preprocessed exactly as at inference
(``prepare_pixels`` + ``normalize``) without augmentation.

``DEFAULT_CALIB_IMAGES`` is the one default of ``--calib``; numpy and the run directory are
imported inside the functions so ``edgemri convert --help`` can read it for free.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgemri.errors import DataError

if TYPE_CHECKING:
    import numpy as np

    from edgemri.rundir import RunDir

log = logging.getLogger("edgemri.convert")

#: Calibration images drawn from the train split when ``--calib`` is not given.
DEFAULT_CALIB_IMAGES = 300
#: Fewer calibration images than this gives a warning: int8 ranges from few images are noisy.
MIN_RECOMMENDED = 100


def stratified_indices(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` indices, spread over classes in proportion to their counts (each class >= 1)."""
    import numpy as np

    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    share = np.maximum(1, np.floor(counts / counts.sum() * n)).astype(int)
    while share.sum() < n:  # hand out the remainder to the classes with most left over
        room = counts - share
        share[int(np.argmax(room))] += 1
    while share.sum() > n:
        share[int(np.argmax(share))] -= 1
    picks = [rng.choice(np.flatnonzero(labels == c), size=min(k, cnt), replace=False)
             for c, k, cnt in zip(classes, share, counts)]
    return np.sort(np.concatenate(picks))


def calibration_pixels(run: RunDir, n: int, seed: int = 0, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 pixels, labels) of ``n`` stratified train images of the run."""
    from edgemri.convert.source import split_arrays

    if n <= 0:
        raise DataError(f"--calib must be a positive number of images, not {n}")
    pixels, labels = split_arrays(run, "train", progress=progress)
    if len(pixels) == 0:
        raise DataError(f"{run.split_path} has no training images to calibrate with",
                        "Re-create the split so it has a train part")
    n_classes = run.manifest().num_classes
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(f"calibration labels of {run.root} do not match the manifest's {n_classes} classes",
                        "Use the split the model was trained with")
    idx = stratified_indices(labels, n, seed)
    return pixels[idx], labels[idx]


@dataclass(frozen=True)
class CalibrationSet:
    x: np.ndarray  # float32 NHWC model inputs
    per_class: dict[str, int]

    def summary(self) -> dict:
        """What an int8 artifact's manifest records about how it was calibrated."""
        return {"images": len(self.x), "split": "train", "per_class": self.per_class,
                "min": float(self.x.min()), "max": float(self.x.max())}


def calibration_set(run: RunDir, n: int = DEFAULT_CALIB_IMAGES, seed: int = 0,
                    progress: bool = False) -> CalibrationSet:
    """float32 model inputs for calibration; logs counts per class and the value range."""
    from edgemri.runtime.preprocess import normalize

    manifest = run.manifest()
    pixels, labels = calibration_pixels(run, n, seed, progress)
    x = normalize(pixels, manifest.input)
    per_class = {c: int((labels == i).sum()) for i, c in enumerate(manifest.classes)}
    log.info("calibration: %d train images %s, values in [%.3f, %.3f]", len(x), per_class,
             float(x.min()), float(x.max()))
    if len(x) < MIN_RECOMMENDED:
        log.warning("calibration uses only %d images (fewer than %d): int8 ranges may be poor",
                    len(x), MIN_RECOMMENDED)
    return CalibrationSet(x, per_class)
