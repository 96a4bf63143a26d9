"""Numpy augmentation of uint8 image batches (no TensorFlow: works under Keras on JAX/PyTorch).

The published MRI/ultrasound recipes use Keras' ImageDataGenerator knobs: flips, rotation, zoom,
shift, shear, brightness and contrast. Geometric ones are fused into ONE affine warp per image
(bilinear sampling, zero fill: the background of MRI and ultrasound is black), so a batch costs
one gather. Augmentation runs only on training batches; the model never contains it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from edgemri.errors import UsageError


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges are symmetric: rotation in degrees, zoom/shift/brightness/contrast as fractions,
    shear in degrees. 0 (or False) switches a transform off."""

    hflip: bool = False
    vflip: bool = False
    rotation: float = 0.0
    zoom: float = 0.0
    shift: float = 0.0
    shear: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def geometric(self) -> bool:
        return any((self.rotation, self.zoom, self.shift, self.shear))

    @property
    def enabled(self) -> bool:
        return self.hflip or self.vflip or self.geometric or bool(self.brightness or self.contrast)

    def with_overrides(self, **changes: Any) -> AugmentConfig:
        """The preset with the given knobs replaced (None = keep the preset's value)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


#: Brain MRI: axial slices are left/right symmetric-ish, never upside down.
#: Breast ultrasound: the probe is at the top (no vertical flip), speckle makes contrast matter.
PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(),
    "mri": AugmentConfig(hflip=True, rotation=15.0, zoom=0.1, shift=0.1, shear=5.0, brightness=0.1, contrast=0.1),
    "ultrasound": AugmentConfig(hflip=True, rotation=10.0, zoom=0.1, shift=0.05, shear=0.0,
                                brightness=0.15, contrast=0.2),
}


def preset(name: str) -> AugmentConfig:
    if name not in PRESETS:
        raise UsageError(f"unknown augmentation preset {name!r}", f"Choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


def augment_batch(pixels: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """uint8 (N, H, W, C) -> float32 (N, H, W, C) in [0, 255], each image transformed independently."""
    x = pixels.astype(np.float32)
    if not cfg.enabled:
        return x
    n = x.shape[0]
    if cfg.hflip:
        flip = rng.random(n) < 0.5
        x[flip] = x[flip, :, ::-1]
    if cfg.vflip:
        flip = rng.random(n) < 0.5
        x[flip] = x[flip, ::-1]
    if cfg.geometric:
        x = np.stack([_warp(img, _affine(cfg, img.shape[0], img.shape[1], rng)) for img in x])
    if cfg.brightness:
        x += (rng.uniform(-cfg.brightness, cfg.brightness, size=(n, 1, 1, 1)) * 255.0).astype(np.float32)
    if cfg.contrast:
        factor = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast, size=(n, 1, 1, 1)).astype(np.float32)
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        x = (x - mean) * factor + mean
    return np.clip(x, 0.0, 255.0, out=x)


def _affine(cfg: AugmentConfig, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """3x3 matrix mapping OUTPUT pixel coords (x, y, 1) to INPUT coords, about the image centre."""
    angle = math.radians(rng.uniform(-cfg.rotation, cfg.rotation))
    shear = math.radians(rng.uniform(-cfg.shear, cfg.shear))
    zx, zy = (rng.uniform(1 - cfg.zoom, 1 + cfg.zoom, size=2) if cfg.zoom else (1.0, 1.0))
    tx, ty = rng.uniform(-cfg.shift, cfg.shift, size=2) * (w, h)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    rot = np.array([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]])
    shr = np.array([[1, -math.sin(shear), 0], [0, math.cos(shear), 0], [0, 0, 1]])
    zoom = np.diag([1.0 / zx, 1.0 / zy, 1.0])  # zoom > 1 samples a smaller input area: zoom in
    centre = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]])
    uncentre = np.array([[1, 0, -cx - tx], [0, 1, -cy - ty], [0, 0, 1]])
    return centre @ rot @ shr @ zoom @ uncentre


def _warp(img: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Bilinear inverse warp of one (H, W, C) float image; outside pixels are 0."""
    h, w, c = img.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    src_x = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
    src_y = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
    x0 = np.floor(src_x).astype(np.int64)
    y0 = np.floor(src_y).astype(np.int64)
    fx = (src_x - x0)[..., None]
    fy = (src_y - y0)[..., None]
    padded = np.zeros((h + 2, w + 2, c), dtype=img.dtype)  # one-pixel zero border absorbs the edges
    padded[1:-1, 1:-1] = img
    # Indices into the padded image; anything beyond the image lands on the zero border.
    x0, x1 = np.clip(x0 + 1, 0, w + 1), np.clip(x0 + 2, 0, w + 1)
    y0, y1 = np.clip(y0 + 1, 0, h + 1), np.clip(y0 + 2, 0, h + 1)
    out = (padded[y0, x0] * (1 - fx) * (1 - fy) + padded[y0, x1] * fx * (1 - fy)
           + padded[y1, x0] * (1 - fx) * fy + padded[y1, x1] * fx * fy)
    return out.astype(np.float32)
