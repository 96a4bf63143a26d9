"""Numpy augmentation of uint8 image batches (no TensorFlow: works under Keras on JAX/PyTorch).

The published MRI/ultrasound recipes use Keras' ImageDataGenerator knobs: flips, rotation, zoom,
shift, shear, brightness and contrast; PyTorch notebooks add torchvision's random resized crop
(``crop_scale``). Geometric ones are fused into ONE affine warp per image
(bilinear sampling, zero fill: the background of MRI and ultrasound is black), so a batch costs
one gather. Augmentation runs only on training batches; the model never contains it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from edgemri.errors import UsageError

#: How ``brightness`` changes an image: ``add`` shifts every pixel by up to +-brightness x 255 (Keras'
#: RandomBrightness layer); ``scale`` multiplies it by a factor in 1 +- brightness (torchvision's
#: ColorJitter, Keras' ImageDataGenerator ``brightness_range``, PIL's ImageEnhance.Brightness), which
#: keeps an MRI's black background black. Notebooks written with either library are reproduced by
#: picking theirs.
BRIGHTNESS_MODES = ("add", "scale")

#: torchvision ``RandomResizedCrop``'s aspect-ratio range (its default), drawn log-uniformly.
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges are symmetric: rotation in degrees, zoom/shift/brightness/contrast as fractions,
    shear in degrees. 0 (or False) switches a transform off. ``brightness_mode``: see
    :data:`BRIGHTNESS_MODES`. ``crop_scale`` is the smallest area of torchvision's random resized
    crop, as a fraction of the image (its default is 0.08; 0: off): a box of area U(crop_scale, 1)
    and aspect ratio in :data:`CROP_RATIO` is cut at a random place and stretched to the full size,
    before the other geometric transforms (torchvision's order when the crop comes first)."""

    hflip: bool = False
    vflip: bool = False
    rotation: float = 0.0
    zoom: float = 0.0
    shift: float = 0.0
    shear: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    brightness_mode: str = "add"
    crop_scale: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.crop_scale < 1.0:
            raise UsageError(f"crop scale {self.crop_scale} is outside [0, 1)",
                             "Give the smallest crop area as a fraction, e.g. 0.08 (torchvision's default); 0: off")
        if self.brightness_mode not in BRIGHTNESS_MODES:
            raise UsageError(f"unknown brightness mode {self.brightness_mode!r}",
                             f"Choose one of: {', '.join(BRIGHTNESS_MODES)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def geometric(self) -> bool:
        return any((self.rotation, self.zoom, self.shift, self.shear, self.crop_scale))

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
    """uint8 (N, H, W, C) -> float32 (N, H, W, C) in [0, 255], each image transformed independently.

    Every random draw is made up front, in a fixed order, from ``rng``: the batch depends only on
    the generator's seed (a resumed run sees the same batches) and never on which thread or core
    produced it. The warp is OpenCV's (C, SIMD, releases the GIL, so loader threads scale); the
    photometric change is one fused per-image ``a * x + b`` pass.
    """
    n = pixels.shape[0]
    x = pixels.astype(np.float32)
    if not cfg.enabled or n == 0:
        return x
    hflip = rng.random(n) < 0.5 if cfg.hflip else np.zeros(n, bool)
    vflip = rng.random(n) < 0.5 if cfg.vflip else np.zeros(n, bool)
    h, w = x.shape[1], x.shape[2]
    matrices = [_affine(cfg, h, w, rng) for _ in range(n)] if cfg.geometric else []
    bright = rng.uniform(-cfg.brightness, cfg.brightness, n) if cfg.brightness else np.zeros(n)
    factor = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast, n) if cfg.contrast else np.ones(n)
    x[hflip] = x[hflip, :, ::-1]
    x[vflip] = x[vflip, ::-1]
    if matrices:
        for i, matrix in enumerate(matrices):
            x[i] = _warp(x[i], matrix)
    if cfg.brightness or cfg.contrast:
        mean = x.mean(axis=(1, 2, 3), dtype=np.float64) if cfg.contrast else np.zeros(n)
        if cfg.brightness_mode == "scale":
            # x * s, then contrast f about its mean s*m: f*s*x + (1-f)*s*m
            gain = 1.0 + bright
            scale, shift = factor * gain, (1.0 - factor) * gain * mean
        else:
            # x + b, then contrast f about its mean m + b: f*x + (1-f)*m + b
            scale, shift = factor, (1.0 - factor) * mean + bright * 255.0
        x *= scale.astype(np.float32).reshape(n, 1, 1, 1)
        x += shift.astype(np.float32).reshape(n, 1, 1, 1)
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
    crop = _crop(cfg.crop_scale, h, w, rng) if cfg.crop_scale else np.eye(3)
    return crop @ centre @ rot @ shr @ zoom @ uncentre


def _crop(scale: float, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """torchvision's RandomResizedCrop box as a 3x3 map from full-size coords into the box.

    Up to 10 draws of area ``U(scale, 1) * h * w`` and a log-uniform ratio in :data:`CROP_RATIO`;
    the first box that fits is placed uniformly. If none fits (rare for near-square images), the
    whole image, as torchvision falls back to (its fallback centre crop is the whole image when the
    image's own ratio is within the range).
    """
    lo, hi = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    for _ in range(10):
        area = rng.uniform(scale, 1.0) * h * w
        ratio = math.exp(rng.uniform(lo, hi))
        cw, ch = math.sqrt(area * ratio), math.sqrt(area / ratio)
        if cw <= w and ch <= h:
            return box_matrix(rng.uniform(0.0, w - cw), rng.uniform(0.0, h - ch), cw, ch, h, w)
    return np.eye(3)


def box_matrix(x0: float, y0: float, cw: float, ch: float, h: int, w: int) -> np.ndarray:
    """Output pixel coords of an (h, w) image -> input coords inside the box at (x0, y0), cw x ch.

    Pixel edges, not centres, line up (OpenCV's and PIL's resize convention): output pixel x
    samples ``x0 + (x + 0.5) * cw / w - 0.5``.
    """
    sx, sy = cw / w, ch / h
    return np.array([[sx, 0, x0 + 0.5 * sx - 0.5], [0, sy, y0 + 0.5 * sy - 0.5], [0, 0, 1]])


def _warp(img: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Bilinear inverse warp of one (H, W, C) float32 image; outside pixels are 0 (black background).

    ``matrix`` maps output to input coordinates, which is OpenCV's ``WARP_INVERSE_MAP`` convention.
    """
    from edgemri.extras import require

    cv2 = require("cv2", "train", "training-time augmentation")
    h, w, c = img.shape
    out = cv2.warpAffine(img, np.ascontiguousarray(matrix[:2], dtype=np.float64), (w, h),
                         flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0)
    return out.reshape(h, w, c)
