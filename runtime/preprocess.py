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
        f = rgb.astype(np.float64)
        gray = np.rint(f[..., 0] * LUMA[0] + f[..., 1] * LUMA[1] + f[..., 2] * LUMA[2])
        gray = np.clip(gray, 0, 255).astype(np.uint8)
    if color == "gray":
        return gray[..., None]
    return np.repeat(gray[..., None], 3, axis=-1)


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


def resize(arr: np.ndarray, height: int, width: int, method: str = "bilinear") -> np.ndarray:
    """uint8 (H, W, C) -> uint8 (height, width, C) with the documented separable filter."""
    h, w = arr.shape[:2]
    if (h, w) == (height, width):
        return np.ascontiguousarray(arr, dtype=np.uint8)
    f = arr.astype(np.float64)
    out = _resample_rows(f, resize_weights(h, height, method))
    out = _resample_rows(out.transpose(1, 0, 2), resize_weights(w, width, method)).transpose(1, 0, 2)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _resample_rows(f: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``out[o] = sum_k weights[o, k] * f[k]`` over axis 0, in ascending k, multiply then add.

    Not ``einsum``/BLAS: their reduction order and fused multiply-add depend on the CPU (SIMD
    width, FMA on ARM), which made the Pi, x86 and the Java port disagree by an ulp at .5 ties.
    Each filter's support is a contiguous run of taps, so this loops over taps, not input rows.
    """
    nonzero = weights != 0
    first = nonzero.argmax(axis=1)
    taps = nonzero.sum(axis=1)
    rows = np.arange(weights.shape[0])
    out = np.zeros((weights.shape[0],) + f.shape[1:], dtype=np.float64)
    bshape = (-1,) + (1,) * (f.ndim - 1)
    for t in range(int(taps.max())):
        idx = np.minimum(first + t, f.shape[0] - 1)
        w = np.where(t < taps, weights[rows, idx], 0.0)
        out += w.reshape(bshape) * f[idx]
    return out


def prepare_pixels(arr: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Canonical uint8 image -> resized uint8 (H, W, C) in the manifest's colour mode.

    This is what training caches: normalization happens per batch, augmentation in between.
    """
    return resize(to_color(arr, spec.color), spec.height, spec.width, spec.resize)


def normalize(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 pixels (any leading dims) -> float32 model-space values."""
    return (pixels.astype(np.float64) * spec.scale + spec.offset).astype(np.float32)


def quantize(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 pixels -> the model's integer input, from float64 so every port rounds alike."""
    q = spec.quantization
    assert q is not None, "quantize() needs an input quantization"
    real = pixels.astype(np.float64) * spec.scale + spec.offset
    info = np.iinfo(np.int8 if spec.dtype == "int8" else np.uint8)
    vals = np.clip(np.rint(real / q.scale) + q.zero_point, info.min, info.max)
    return vals.astype(np.int8 if spec.dtype == "int8" else np.uint8)


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
