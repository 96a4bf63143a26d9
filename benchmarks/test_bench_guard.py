"""The out-of-distribution guard per image, the way ``Predictor.predict_one`` pays it (issue 14, 17).

The guard ran on every image of a model whose manifest carries an ``ood`` section and cost 4-5 ms
on a 2-core Intel Xeon before its statistics were vectorized (colourfulness in int16 planes, a
shortcut for RGB files of gray scans, block means by ``np.add.reduceat``): more than the model.
``legacy`` is that implementation, kept so one run shows before and after; both give the same
verdict and statistics (asserted).
"""

from __future__ import annotations

import numpy as np
import pytest

from edgemri.runtime.guard import Guard, image_features
from edgemri.runtime.manifest import InputSpec, OODGuard
from edgemri.runtime.preprocess import prepare_pixels

SPEC = InputSpec(128, 128)


def legacy_colourfulness(arr: np.ndarray) -> float:
    rgb = arr[..., :3].astype(np.int32)
    total = rgb.sum(axis=-1, keepdims=True)
    return float(np.abs(3 * rgb - total).sum()) / (9.0 * rgb.shape[0] * rgb.shape[1])


def legacy_features(pixels: np.ndarray, grid: int = 8, bins: int = 16) -> np.ndarray:
    f = pixels[..., :3].astype(np.float64)
    g = np.clip(np.rint(f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114), 0, 255)
    h, w = g.shape
    rows = [(h * i) // grid for i in range(grid + 1)]
    cols = [(w * j) // grid for j in range(grid + 1)]
    means = [g[rows[i]:rows[i + 1], cols[j]:cols[j + 1]].mean() / 255.0 for i in range(grid) for j in range(grid)]
    counts = np.bincount(((g.astype(np.int64) * bins) // 256).ravel(), minlength=bins)[:bins]
    return np.concatenate([np.asarray(means), np.sqrt(counts / g.size)])


@pytest.fixture(scope="module")
def guard(mri_like_image) -> Guard:
    from edgemri.calibrate import fit_reference, image_threshold

    rng = np.random.default_rng(1)
    scan = _scan512(mri_like_image).astype(int)
    train = [np.clip(scan + rng.integers(-3, 4, scan.shape[:2])[..., None], 0, 255).astype(np.uint8)
             for _ in range(30)]
    pixels = np.stack([prepare_pixels(t, SPEC) for t in train])
    ref = fit_reference([0.0] * len(train), [(512, 512)] * len(train),
                        np.stack([image_features(p) for p in pixels]), "grayscale MRI")
    ref["image_threshold"] = image_threshold(ref, pixels[:10])
    return Guard(OODGuard(score="msp", threshold=0.5, reference=ref))


def _scan512(mri_like_image) -> np.ndarray:
    from PIL import Image

    return np.dstack([np.asarray(Image.fromarray(mri_like_image).resize((512, 512), Image.BILINEAR))] * 3)


@pytest.mark.benchmark(group="ood guard, 512 px RGB file of a gray scan")
@pytest.mark.parametrize("impl", ["fast", "legacy"])
def test_guard_check(benchmark, guard, mri_like_image, impl):
    raw = _scan512(mri_like_image)
    pixels = prepare_pixels(raw, SPEC)
    probs = np.array([0.1, 0.7, 0.2], dtype=np.float32)
    if impl == "fast":
        verdict = benchmark(guard.check, raw, pixels, probs)
    else:
        benchmark(lambda: (legacy_colourfulness(raw), legacy_features(pixels)))
        verdict = guard.check(raw, pixels, probs)
    assert verdict.in_distribution is True, verdict.reason
    assert legacy_colourfulness(raw) == verdict.checks["colourfulness"] == 0.0
    np.testing.assert_array_equal(legacy_features(pixels), image_features(pixels))


@pytest.mark.benchmark(group="ood guard, colour photo")
def test_guard_check_colour(benchmark, guard):
    raw = np.random.default_rng(2).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    pixels = prepare_pixels(raw, SPEC)
    verdict = benchmark(guard.check, raw, pixels, np.array([0.1, 0.7, 0.2], dtype=np.float32))
    assert verdict.in_distribution is False and verdict.reason.startswith("colour image")
    assert verdict.checks["colourfulness"] == pytest.approx(legacy_colourfulness(raw), abs=1e-3)
