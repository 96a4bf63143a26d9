"""Training input pipeline: augmentation + normalization of one batch (what a GPU waits on).

Aim (issue 16): >= 1,000 img/s at 224 px on 2 cores for the pipeline alone, near-linear in cores.
``python benchmarks/pipeline_curve.py`` prints the img/s-per-thread curve on this machine.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

from edgemri.runtime.manifest import InputSpec
from edgemri.train.arrays import normalize_batch
from edgemri.train.augment import augment_batch, preset

BATCH = 32


@pytest.mark.benchmark(group="train pipeline")
@pytest.mark.parametrize("size", [128, 224])
def test_augment_normalize_batch(benchmark, size):
    pixels = np.random.default_rng(0).integers(0, 256, (BATCH, size, size, 3), dtype=np.uint8)
    spec = InputSpec(size, size)
    rng = np.random.default_rng(1)

    def step() -> np.ndarray:
        return normalize_batch(augment_batch(pixels, preset("mri"), rng), spec)

    out = benchmark(step)
    assert out.shape == pixels.shape and out.dtype == np.float32
    benchmark.extra_info["img_per_s_median"] = round(BATCH / benchmark.stats.stats.median, 1)
