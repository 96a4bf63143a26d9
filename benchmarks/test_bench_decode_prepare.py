"""Warm decode + preprocess per image, the way ``edgemri predict`` pays it: a 224 px JPEG -> 128 px.

Issue 14 aim: the runtime's overhead (decode + preprocess + postprocess) at most 25% of model time
(ConvMixer-edge int8 at 128 px: about 4 ms on the builtin kernels). ``legacy`` is the resize as it
was before issue 14 (taps over a trailing channel axis, float64 copy of the whole image, gray3
resized three times), kept here so one run shows before and after on the same machine; both give
identical bytes (asserted), which is what lets the fast one replace it.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgemri.runtime.images import load_image
from edgemri.runtime.manifest import InputSpec
from edgemri.runtime.preprocess import prepare_pixels, resize_weights, to_color

SPECS = {"gray3": InputSpec(128, 128), "rgb": InputSpec(128, 128, color="rgb"),
         "gray": InputSpec(128, 128, color="gray", channels=1)}


def legacy_resize(arr: np.ndarray, height: int, width: int, method: str = "bilinear") -> np.ndarray:
    """The pre-issue-14 implementation (same arithmetic, slower layout)."""
    h, w = arr.shape[:2]
    if (h, w) == (height, width):
        return np.ascontiguousarray(arr, dtype=np.uint8)
    f = arr.astype(np.float64)
    out = _legacy_rows(f, resize_weights(h, height, method))
    out = _legacy_rows(out.transpose(1, 0, 2), resize_weights(w, width, method)).transpose(1, 0, 2)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _legacy_rows(f: np.ndarray, weights: np.ndarray) -> np.ndarray:
    nonzero = weights != 0
    first, taps, rows = nonzero.argmax(axis=1), nonzero.sum(axis=1), np.arange(weights.shape[0])
    out = np.zeros((weights.shape[0],) + f.shape[1:], dtype=np.float64)
    bshape = (-1,) + (1,) * (f.ndim - 1)
    for t in range(int(taps.max())):
        idx = np.minimum(first + t, f.shape[0] - 1)
        out += np.where(t < taps, weights[rows, idx], 0.0).reshape(bshape) * f[idx]
    return out


def legacy_prepare(arr: np.ndarray, spec: InputSpec) -> np.ndarray:
    return legacy_resize(to_color(arr, spec.color), spec.height, spec.width, spec.resize)


@pytest.fixture(scope="module")
def rgb_jpeg(tmp_path_factory, mri_like_image):
    """The MRI-like image as the Kaggle set ships it: a 224 px RGB JPEG of a gray scan."""
    from PIL import Image

    path = tmp_path_factory.mktemp("jpeg") / "scan224.jpg"
    Image.fromarray(np.dstack([mri_like_image] * 3)).save(path, quality=90)
    return path


@pytest.mark.benchmark(group="decode + prepare 224 jpeg -> 128")
@pytest.mark.parametrize("impl", ["fast", "legacy"])
@pytest.mark.parametrize("color", list(SPECS))
def test_decode_and_prepare(benchmark, rgb_jpeg, color, impl):
    spec = SPECS[color]
    prepare = prepare_pixels if impl == "fast" else legacy_prepare
    out = benchmark(lambda: prepare(load_image(rgb_jpeg), spec))
    assert out.shape == (128, 128, spec.channels)
    np.testing.assert_array_equal(out, legacy_prepare(load_image(rgb_jpeg), spec))  # same bytes


@pytest.mark.benchmark(group="prepare 224 -> 128 (no decode)")
@pytest.mark.parametrize("impl", ["fast", "legacy"])
def test_prepare_only_gray3(benchmark, rgb_jpeg, impl):
    arr = load_image(rgb_jpeg)
    prepare = prepare_pixels if impl == "fast" else legacy_prepare
    out = benchmark(prepare, arr, SPECS["gray3"])
    assert out.shape == (128, 128, 3)
