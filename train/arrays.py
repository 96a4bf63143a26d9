"""A run's split as arrays: uint8 pixels prepared exactly like the runtime prepares them.

Conversion calibrates and verifies on these; training caches them once per run and feeds them
through augmentation and ``normalize_batch``. No TensorFlow here: Keras on JAX must work.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from edgemri.runtime.manifest import InputSpec
from edgemri.runtime.preprocess import normalize

if TYPE_CHECKING:
    from edgemri.rundir import RunDir


def normalize_batch(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 (or float 0..255 augmented) pixels -> float32 model input, per the manifest."""
    return normalize(pixels, spec)


def split_arrays(run: RunDir, split: str, progress: bool = True,
                 root: str | os.PathLike[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The run's own ``split`` images at the manifest's input spec: (uint8 NHWC, int64 labels).

    ``root`` overrides the dataset location recorded in split.json (the data moved).
    """
    from edgemri.data.loader import load_samples
    from edgemri.data.split import Split

    manifest = run.manifest()
    data_split = Split.load(run.split_path, root=root)
    samples = data_split.samples(split)
    if not samples:
        spec = manifest.input
        return (np.zeros((0, spec.height, spec.width, spec.channels), np.uint8), np.zeros((0,), np.int64))
    return load_samples(samples, manifest.input, list(manifest.classes), skip_bad=False, progress=progress)
