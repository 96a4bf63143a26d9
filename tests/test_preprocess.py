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


def _reference_resize(arr: np.ndarray, height: int, width: int, method: str) -> np.ndarray:
    """The documented filter written the slow, obvious way: dense weights, every input in ascending
    order, multiply then add in float64, rows then columns (what the Java port does)."""
    from edgemri.runtime.preprocess import resize_weights

    f = arr.astype(np.float64)
    wr, wc = resize_weights(arr.shape[0], height, method), resize_weights(arr.shape[1], width, method)
    rows = np.zeros((height, arr.shape[1], arr.shape[2]))
    for k in range(arr.shape[0]):
        rows += wr[:, k][:, None, None] * f[k][None]
    out = np.zeros((height, width, arr.shape[2]))
    for k in range(arr.shape[1]):
        out += wc[:, k][None, :, None] * rows[:, k][:, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_fast_resize_is_byte_identical_to_the_reference_filter(method):
    """The vectorized resize (per plane, taps only) must not move a single value, ties included."""
    rng = np.random.default_rng(3)
    cases = [((224, 224, 3), (128, 128)), ((224, 224, 1), (128, 128)), ((37, 53, 3), (24, 24)),
             ((16, 16, 1), (40, 31)), ((9, 300, 3), (8, 17))]
    for (h, w, c), (oh, ow) in cases:
        arr = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
        np.testing.assert_array_equal(resize(arr, oh, ow, method), _reference_resize(arr, oh, ow, method))
    ramp = (np.add.outer(np.arange(64), np.arange(48)) % 256).astype(np.uint8)[..., None]  # exact .5 ties at 2x
    np.testing.assert_array_equal(resize(ramp, 32, 24, method), _reference_resize(ramp, 32, 24, method))


def test_gray3_is_the_gray_plane_resized_once_and_replicated():
    rgb = np.random.default_rng(4).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    gray3 = prepare_pixels(rgb, InputSpec(height=24, width=20, color="gray3"))
    gray = prepare_pixels(rgb, InputSpec(height=24, width=20, color="gray", channels=1))
    assert gray3.shape == (24, 20, 3) and gray3.flags.c_contiguous
    np.testing.assert_array_equal(gray3, np.repeat(gray, 3, axis=-1))
    np.testing.assert_array_equal(gray3, _reference_resize(to_color(rgb, "gray3"), 24, 20, "bilinear"))


def test_equal_channel_shortcut_is_the_luma_formula():
    """An RGB image with R = G = B skips the luma arithmetic: only valid because rint(luma(v,v,v)) == v."""
    v = np.arange(256, dtype=np.float64)
    np.testing.assert_array_equal(np.rint(v * 0.299 + v * 0.587 + v * 0.114), v)
    gray = np.random.default_rng(5).integers(0, 256, (33, 47), dtype=np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    np.testing.assert_array_equal(to_color(rgb, "gray")[..., 0], gray)
    tinted = rgb.copy()
    tinted[0, 0, 2] ^= 1  # one channel differs by one level: the formula path, same rounding rule
    f = tinted.astype(np.float64)
    want = np.clip(np.rint(f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114), 0, 255)
    np.testing.assert_array_equal(to_color(tinted, "gray")[..., 0], want.astype(np.uint8))


@pytest.mark.parametrize("dtype,qscale,zero_point", [("int8", 0.0078125, -1), ("int8", 1 / 255, -128),
                                                     ("uint8", 0.0039215689, 0)])
def test_tabulated_quantize_and_normalize_equal_the_formula(dtype, qscale, zero_point):
    """uint8 pixels go through 256-entry tables; every value must be the float64 formula's."""
    spec = InputSpec(height=16, width=16, dtype=dtype, scale=1 / 127.5, offset=-1.0,
                     quantization=Quantization(scale=qscale, zero_point=zero_point))
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=-1)
    info = np.iinfo(np.int8 if dtype == "int8" else np.uint8)
    real = pixels.astype(np.float64) / 127.5 - 1.0
    want = np.clip(np.rint(real / qscale) + zero_point, info.min, info.max).astype(info.dtype)
    got = quantize(pixels, spec)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(quantize(pixels.astype(np.float32), spec), want)  # non-uint8: the formula
    norm = normalize(pixels, spec)
    assert norm.dtype == np.float32
    np.testing.assert_array_equal(norm, real.astype(np.float32))
