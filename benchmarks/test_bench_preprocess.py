"""The preprocessing every prediction pays for, at the real input size (224 x 224).

``prepare_pixels`` (colour + antialiased resize, float64 for portability) dominates end-to-end
latency for small int8 models, so its cost is tracked here on its own.
"""

from __future__ import annotations

import pytest

from edgemri.runtime.images import load_image
from edgemri.runtime.manifest import InputSpec, Quantization
from edgemri.runtime.preprocess import normalize, prepare_pixels, quantize, to_model_input

SPEC = InputSpec(224, 224)
INT8 = InputSpec(224, 224, dtype="int8", quantization=Quantization(1.0 / 127.5, 0))


@pytest.mark.benchmark(group="decode")
@pytest.mark.parametrize("kind", ["jpg224", "png224", "png512"])
def test_decode(benchmark, image_files, kind):
    arr = benchmark(load_image, image_files[kind])
    assert arr.dtype.name == "uint8" and arr.ndim == 2


@pytest.mark.benchmark(group="prepare_pixels")
def test_prepare_pixels_same_size(benchmark, mri_like_image):
    """224 in, 224 out: no resampling, only the gray -> 3-channel step."""
    out = benchmark(prepare_pixels, mri_like_image, SPEC)
    assert out.shape == (224, 224, 3)


@pytest.mark.benchmark(group="prepare_pixels")
def test_prepare_pixels_downscale_512(benchmark, mri_like_image):
    import numpy as np

    big = np.kron(mri_like_image, np.ones((2, 2), dtype=np.uint8))[:512, :512]
    out = benchmark(prepare_pixels, big, SPEC)
    assert out.shape == (224, 224, 3)


@pytest.mark.benchmark(group="prepare_pixels")
def test_prepare_pixels_rgb_upscale(benchmark, mri_like_image):
    import numpy as np

    rgb = np.stack([mri_like_image[:160, :160]] * 3, axis=-1)
    out = benchmark(prepare_pixels, rgb, SPEC)
    assert out.shape == (224, 224, 3)


@pytest.mark.benchmark(group="normalize/quantize")
def test_normalize(benchmark, mri_like_image):
    pixels = prepare_pixels(mri_like_image, SPEC)[None]
    x = benchmark(normalize, pixels, SPEC)
    assert x.dtype.name == "float32" and -1.0 <= x.min() <= x.max() <= 1.0


@pytest.mark.benchmark(group="normalize/quantize")
def test_quantize(benchmark, mri_like_image):
    pixels = prepare_pixels(mri_like_image, SPEC)[None]
    q = benchmark(quantize, pixels, INT8)
    assert q.dtype.name == "int8"


@pytest.mark.benchmark(group="normalize/quantize")
def test_to_model_input_nchw(benchmark, mri_like_image):
    spec = InputSpec(224, 224, layout="NCHW")
    pixels = prepare_pixels(mri_like_image, spec)[None]
    x = benchmark(to_model_input, pixels, spec)
    assert x.shape == (1, 3, 224, 224)
