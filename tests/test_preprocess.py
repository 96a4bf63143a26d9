"""The one preprocessing path: colour, resize, normalize, quantize, layout, postprocess."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgemri.runtime.manifest import InputSpec, OutputSpec, Quantization
from edgemri.runtime.preprocess import (
    dequantize,
    normalize,
    postprocess,
    prepare_pixels,
    quantize,
    resize,
    softmax,
    to_color,
    to_model_input,
)

pytestmark = pytest.mark.runtime  # numpy + pillow only


def test_gray3_uses_rec601_luma_and_replicates():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[1, 0] = (0, 0, 255)
    out = to_color(rgb, "gray3")
    assert out.shape == (2, 2, 3)
    assert list(out[..., 0].ravel()) == [76, 150, 29, 0]
    assert (out[..., 0] == out[..., 2]).all()
    assert to_color(rgb, "gray").shape == (2, 2, 1)
    assert (to_color(rgb, "rgb") == rgb).all()


@pytest.mark.parametrize("size_in, size_out", [((37, 53), (24, 24)), ((16, 16), (40, 31)), ((224, 224), (128, 128))])
def test_bilinear_resize_tracks_pillow_within_one_level(size_in, size_out):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=size_in, dtype=np.uint8)
    ours = resize(arr[..., None], *size_out)[..., 0]
    pil = np.asarray(Image.fromarray(arr).resize(size_out[::-1], Image.BILINEAR))
    assert ours.shape == size_out
    assert np.abs(ours.astype(int) - pil.astype(int)).max() <= 1


def test_resize_identity_and_nearest():
    arr = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)
    assert (resize(arr, 4, 4) == arr).all()
    assert resize(arr, 2, 2, "nearest")[..., 0].tolist() == [[5, 7], [13, 15]]


def test_normalize_default_maps_to_minus_one_one():
    spec = InputSpec(height=8, width=8)
    x = normalize(np.array([0, 255], np.uint8), spec)
    assert x.dtype == np.float32
    assert np.allclose(x, [-1.0, 1.0])


def test_quantize_matches_affine_rule_and_clips():
    spec = InputSpec(height=8, width=8, dtype="int8", quantization=Quantization(1 / 127.5, -1))
    q = quantize(np.array([0, 128, 255], np.uint8), spec)
    assert q.dtype == np.int8
    assert q.tolist() == [-128, -1, 127]  # 128 -> 0.5 step: half to even -> 0, plus zero point
    coarse = InputSpec(height=8, width=8, dtype="int8", quantization=Quantization(0.001, 0))
    assert quantize(np.array([255], np.uint8), coarse).tolist() == [127]


def test_prepare_and_model_input_layouts():
    img = np.full((30, 20), 200, np.uint8)
    spec = InputSpec(height=16, width=8, layout="NCHW")
    pixels = prepare_pixels(img, spec)
    assert pixels.shape == (16, 8, 3)
    x = to_model_input(pixels, spec)
    assert x.shape == (1, 3, 16, 8) and x.dtype == np.float32


def test_postprocess_dequantizes_and_normalizes():
    spec = OutputSpec(dtype="int8", quantization=Quantization(1 / 256, -128))
    raw = np.array([[-128, 127, -1]], np.int8)
    deq = dequantize(raw, spec)
    assert np.allclose(deq, [[0.0, 255 / 256, 127 / 256]])
    probs = postprocess(raw, spec)
    assert np.isclose(probs.sum(), 1.0) and probs.argmax() == 1
    logits = postprocess(np.array([[1.0, 2.0, 3.0]], np.float32), OutputSpec(kind="logits"))
    assert np.allclose(logits, softmax(np.array([[1.0, 2.0, 3.0]])))
