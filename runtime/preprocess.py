"""Canonical pixels -> model input. The one preprocessing path, shared by everything.

Training caches ``prepare_pixels`` output (resized uint8) and normalizes batches with
``normalize``; the runtime, the converter's calibration/verification and the benchmark call
``preprocess``; the Android core re-implements exactly these steps in Java and is tested for
byte-parity on fixtures written by ``edgemri bundle``. Keep every step deterministic and simple
to port: float64 arithmetic, explicit rounding (half to even, like Java's ``Math.rint``).

Steps:
1. colour: ``gray`` -> luma (0.299 R + 0.587 G + 0.114 B, rounded) as 1 channel; ``gray3`` -> luma
   replicated to 3 channels; ``rgb`` -> grayscale replicated to 3 channels, colour kept.
2. resize to (height, width): separable, half-pixel centres; ``bilinear`` is a triangle filter
   widened by the scale factor when shrinking (antialiased, like Pillow's BILINEAR);
   ``nearest`` picks ``floor((i + 0.5) * in / out)``. Result rounded to uint8.
3. normalize: ``x = p * scale + offset`` (float32).
4. quantize (int8/uint8 inputs): ``q = clip(rint(x / qscale) + zero_point)`` computed in float64.
5. layout: NHWC, or transposed to NCHW.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from edgemri.runtime.manifest import InputSpec, Manifest, OutputSpec

LUMA = (0.299, 0.587, 0.114)


def to_color(arr: np.ndarray, color: str) -> np.ndarray:
    """Canonical uint8 (H, W) or (H, W, 3) -> (H, W, C) for the manifest's colour mode."""
    if arr.ndim == 2:
        if color == "rgb":
            return np.ascontiguousarray(np.repeat(arr[..., None], 3, axis=-1), dtype=np.uint8)
        gray = arr
    else:
        rgb = arr[..., :3]
        if color == "rgb":
            return np.ascontiguousarray(rgb, dtype=np.uint8)
        gray = luma(rgb)
    if color == "gray":
        return gray[..., None]
    return np.repeat(gray[..., None], 3, axis=-1)


def is_gray_rgb(rgb: np.ndarray) -> bool:
    """True when R, G and B are equal everywhere: grayscale scans saved as RGB JPEGs usually are."""
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


def luma(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> (H, W) uint8 ``rint(0.299 R + 0.587 G + 0.114 B)`` in float64.

    For R = G = B = v the formula gives exactly v for every v in 0..255 (a test checks it), so an
    image whose channels are equal skips the arithmetic and returns the same bytes.
    """
    if is_gray_rgb(rgb):
        return np.ascontiguousarray(rgb[..., 0], dtype=np.uint8)
    f = rgb.astype(np.float64)
    gray = np.rint(f[..., 0] * LUMA[0] + f[..., 1] * LUMA[1] + f[..., 2] * LUMA[2])
    return np.clip(gray, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=64)
def resize_weights(n_in: int, n_out: int, method: str = "bilinear") -> np.ndarray:
    """(n_out, n_in) float64 matrix whose rows are the resampling weights of one output pixel."""
    weights = np.zeros((n_out, n_in), dtype=np.float64)
    scale = n_in / n_out
    if method == "nearest":
        idx = np.minimum(np.floor((np.arange(n_out) + 0.5) * scale).astype(np.int64), n_in - 1)
        weights[np.arange(n_out), idx] = 1.0
        return weights
    support = max(scale, 1.0)
    src = np.arange(n_in) + 0.5
    for i in range(n_out):
        center = (i + 0.5) * scale
        w = np.maximum(0.0, 1.0 - np.abs((src - center) / support))
        total = w.sum()
        if total <= 0:  # cannot happen for valid sizes; keep nearest as a guard
            w[min(int(center), n_in - 1)] = 1.0
            total = 1.0
        weights[i] = w / total
    weights.setflags(write=False)
    return weights


@functools.lru_cache(maxsize=64)
def _taps(n_in: int, n_out: int, method: str) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """``resize_weights`` as taps: per tap t, (source index, weight) of every output pixel.

    Each filter's support is a contiguous run of source pixels starting at ``first``; outputs
    with fewer taps than the widest get weight 0 (adding ``0.0 * p`` changes nothing).
    """
    weights = resize_weights(n_in, n_out, method)
    nonzero = weights != 0
    first, count, outputs = nonzero.argmax(axis=1), nonzero.sum(axis=1), np.arange(n_out)
    taps = []
    for t in range(int(count.max())):
        idx = np.minimum(first + t, n_in - 1)
        w = np.where(t < count, weights[outputs, idx], 0.0)
        idx.setflags(write=False)
        w.setflags(write=False)
        taps.append((idx, w))
    return tuple(taps)


def resize(arr: np.ndarray, height: int, width: int, method: str = "bilinear") -> np.ndarray:
    """uint8 (H, W, C) -> uint8 (height, width, C) with the documented separable filter."""
    h, w = arr.shape[:2]
    if (h, w) == (height, width):
        return np.ascontiguousarray(arr, dtype=np.uint8)
    if arr.ndim == 2:
        return _resize_plane(arr, height, width, method)
    planes = [_resize_plane(np.ascontiguousarray(arr[..., c]), height, width, method)
              for c in range(arr.shape[2])]
    return planes[0][..., None] if len(planes) == 1 else np.stack(planes, axis=-1)


def _resize_plane(plane: np.ndarray, height: int, width: int, method: str) -> np.ndarray:
    """One uint8 (H, W) channel: rows, then columns, each ``out = sum_t w_t * p_t`` in tap order.

    Not ``einsum``/BLAS: their reduction order and fused multiply-add depend on the CPU (SIMD
    width, FMA on ARM), which made the Pi, x86 and the Java port disagree by an ulp at .5 ties.
    Every product and sum is float64, ascending taps, multiply then add, exactly as the Java
    port does; one channel at a time on contiguous arrays is what makes it fast (a trailing
    channel axis made numpy's strided loops 5x slower), and it changes no value. The plane is
    converted to float64 once and the weights are pre-broadcast to full rows (numpy's mixed-type
    and broadcasting loops were half the time); the values are the same.
    """
    h, w = plane.shape
    rows = _resample_axis0(plane.astype(np.float64), _full_taps(h, height, method, w))
    cols = _resample_axis0(np.ascontiguousarray(rows.T), _full_taps(w, width, method, height))
    return np.clip(np.rint(cols.T), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=64)
def _full_taps(n_in: int, n_out: int, method: str, across: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """``_taps`` with each weight vector broadcast to an (n_out, across) array."""
    full = []
    for idx, w in _taps(n_in, n_out, method):
        weights = np.ascontiguousarray(np.broadcast_to(w[:, None], (n_out, across)))
        weights.setflags(write=False)
        full.append((idx, weights))
    return tuple(full)


def _resample_axis0(values: np.ndarray, taps: tuple[tuple[np.ndarray, np.ndarray], ...]) -> np.ndarray:
    """``out[o] = sum_t w_t[o] * values[idx_t[o]]`` (float64 values, full-shape weights)."""
    out: np.ndarray | None = None
    term: np.ndarray | None = None
    for idx, w in taps:
        if out is None:
            out = np.multiply(values[idx], w)
            term = np.empty_like(out)
        else:
            np.multiply(values[idx], w, out=term)
            out += term
    assert out is not None, "a resize filter has at least one tap"
    return out


def prepare_pixels(arr: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Canonical uint8 image -> resized uint8 (H, W, C) in the manifest's colour mode.

    This is what training caches: normalization happens per batch, augmentation in between.
    """
    if spec.color != "gray3":
        return resize(to_color(arr, spec.color), spec.height, spec.width, spec.resize)
    # gray3's three channels are one luma plane: resize it once, replicate after (same bytes)
    gray = resize(to_color(arr, "gray"), spec.height, spec.width, spec.resize)
    return np.repeat(gray, 3, axis=-1)


def normalize(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 pixels (any leading dims) -> float32 model-space values."""
    if pixels.dtype == np.uint8:  # a 256-entry table of the same formula: same values, no float64 pass
        return _normalize_table(spec.scale, spec.offset)[pixels]
    return _normalize_formula(pixels, spec.scale, spec.offset)


def _normalize_formula(pixels: np.ndarray, scale: float, offset: float) -> np.ndarray:
    return (pixels.astype(np.float64) * scale + offset).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _normalize_table(scale: float, offset: float) -> np.ndarray:
    table = _normalize_formula(np.arange(256), scale, offset)
    table.setflags(write=False)
    return table


def quantize(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 pixels -> the model's integer input, from float64 so every port rounds alike."""
    q = spec.quantization
    assert q is not None, "quantize() needs an input quantization"
    args = (spec.scale, spec.offset, q.scale, q.zero_point, spec.dtype)
    if pixels.dtype == np.uint8:  # the formula tabulated for the 256 pixel values: same bytes, 10x faster
        return _quantize_table(*args)[pixels]
    return _quantize_formula(pixels, *args)


def _quantize_formula(pixels: np.ndarray, scale: float, offset: float, qscale: float, zero_point: int,
                      dtype: str) -> np.ndarray:
    real = pixels.astype(np.float64) * scale + offset
    info = np.iinfo(np.int8 if dtype == "int8" else np.uint8)
    vals = np.clip(np.rint(real / qscale) + zero_point, info.min, info.max)
    return vals.astype(np.int8 if dtype == "int8" else np.uint8)


@functools.lru_cache(maxsize=16)
def _quantize_table(scale: float, offset: float, qscale: float, zero_point: int, dtype: str) -> np.ndarray:
    table = _quantize_formula(np.arange(256), scale, offset, qscale, zero_point, dtype)
    table.setflags(write=False)
    return table


def to_model_input(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Prepared uint8 pixels (N, H, W, C) -> the tensor the model takes (dtype and layout)."""
    if pixels.ndim == 3:
        pixels = pixels[None]
    x = normalize(pixels, spec) if spec.dtype == "float32" else quantize(pixels, spec)
    if spec.layout == "NCHW":
        x = np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))
    return x


def preprocess(image: np.ndarray | str | os.PathLike[str], manifest: Manifest | InputSpec) -> np.ndarray:
    """Image path or canonical array -> model input batch of one."""
    from edgemri.runtime.images import load_image

    spec = manifest.input if isinstance(manifest, Manifest) else manifest
    arr = load_image(image) if isinstance(image, (str, os.PathLike)) else image
    return to_model_input(prepare_pixels(arr, spec), spec)


def dequantize(output: np.ndarray, spec: OutputSpec) -> np.ndarray:
    """The model's raw output -> float32 (identity for float outputs)."""
    if spec.dtype == "float32" or spec.quantization is None:
        return output.astype(np.float32)
    q = spec.quantization
    return ((output.astype(np.float64) - q.zero_point) * q.scale).astype(np.float32)


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def postprocess(output: np.ndarray, spec: OutputSpec) -> np.ndarray:
    """Raw output -> probabilities (N, classes) that sum to 1."""
    real = dequantize(output, spec).reshape(output.shape[0], -1)
    if spec.kind == "logits":
        return softmax(real).astype(np.float32)
    total = real.sum(axis=-1, keepdims=True)
    return np.where(total > 0, real / np.where(total > 0, total, 1), 1.0 / real.shape[-1]).astype(np.float32)
