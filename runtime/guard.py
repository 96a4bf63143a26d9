"""The out-of-distribution guard: "this image is not what the model was trained on".

A classifier answers every image with one of its classes; the guard says when the answer is not
worth reading. It is cheap and needs no second model: the manifest's ``ood`` section carries a
compact summary of the training images (``reference``) and a score threshold, and an image is
checked, first failure wins, for

1. colour: a colour photo for a model trained on grayscale images;
2. size: an aspect ratio outside the training range (with tolerance), or far smaller images;
3. image statistics: the prepared image's 8x8 grid of mean intensities (where the anatomy and
   the background are) and its 16-bin intensity histogram, as z-scores against the training
   images; the largest |z| must stay below a threshold chosen on the validation split;
4. score: the maximum calibrated probability (MSP) must reach the threshold chosen on the
   validation split so that >= 95% of in-distribution validation images pass all four checks.

It is a safety net for the wrong *kind* of image (another modality, a photo, noise), not a
detector of disease outside the training classes. numpy only; ported to Java as ``OodGuard``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgemri.runtime.manifest import OODGuard
from edgemri.runtime.preprocess import is_gray_rgb, luma

REFERENCE_VERSION = 1
GRID = 8
BINS = 16
GUARD_OFF = "guard off: the manifest has no ood section"


@dataclass(frozen=True)
class Verdict:
    """``in_distribution`` is None when the guard is off (no ``ood`` section in the manifest)."""

    in_distribution: bool | None
    reason: str
    checks: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"in_distribution": self.in_distribution, "reason": self.reason, "checks": self.checks}


def colourfulness(arr: np.ndarray) -> float:
    """Mean absolute deviation of R, G, B from their per-pixel mean (0 for a grayscale image).

    JPEG chroma noise on a grayscale scan stays below ~2; a colour photo is 10 or more. Exact
    integer arithmetic: ``|3c - (r+g+b)|`` summed over c is ``|rg - br| + |gb - rg| + |br - gb|``
    with ``rg = r - g`` etc., in int16 planes (a quarter of the memory traffic of int32 pixels);
    an image whose channels are equal (most grayscale scans saved as RGB) is 0 without arithmetic.
    """
    if arr.ndim == 2 or arr.shape[-1] < 3 or is_gray_rgb(arr[..., :3]):
        return 0.0
    r, g, b = np.moveaxis(arr[..., :3], -1, 0).astype(np.int16)
    rg, gb, br = r - g, g - b, b - r
    total = sum(int(np.abs(d).sum(dtype=np.int64)) for d in (rg - br, gb - rg, br - gb))
    return total / (9.0 * arr.shape[0] * arr.shape[1])


def gray_plane(pixels: np.ndarray) -> np.ndarray:
    """Prepared uint8 (H, W, C) -> (H, W) intensities (luma, rounded, for colour input)."""
    if pixels.ndim == 2:
        return pixels
    if pixels.shape[-1] == 1:
        return pixels[..., 0]
    return luma(pixels[..., :3])


def image_features(pixels: np.ndarray, grid: int = GRID, bins: int = BINS) -> np.ndarray:
    """``grid*grid`` block means (/255, row-major) then ``bins`` sqrt histogram fractions.

    Pixel value ``v`` falls in histogram bin ``v * bins // 256``.
    Block ``(i, j)`` covers rows ``floor(i*H/grid) .. floor((i+1)*H/grid)`` (columns alike), so any
    size works and the Java port can loop the same way.
    """
    g = gray_plane(pixels).astype(np.int64)
    h, w = g.shape
    rows = np.array([(h * i) // grid for i in range(grid + 1)])
    cols = np.array([(w * j) // grid for j in range(grid + 1)])
    if min(h, w) < grid:
        raise ValueError(f"image_features needs at least {grid}x{grid} pixels, got {w}x{h}")
    # integer block sums are exact, so sum / count is the very double a per-block mean() gives
    sums = np.add.reduceat(np.add.reduceat(g, rows[:-1], axis=0), cols[:-1], axis=1)
    means = sums / np.outer(np.diff(rows), np.diff(cols)) / 255.0
    counts = np.bincount(((g * bins) // 256).ravel(), minlength=bins)[:bins]
    return np.concatenate([means.ravel(), np.sqrt(counts / g.size)])


class Guard:
    """The checks of one manifest's ``ood`` section; ``Guard(None)`` is the guard switched off."""

    def __init__(self, section: OODGuard | None):
        self.section = section
        ref = section.reference if section else {}
        self.enabled = bool(section and ref.get("version") == REFERENCE_VERSION)
        if self.enabled:
            feats = ref["features"]
            self._mean = np.asarray(feats["mean"], dtype=np.float64)
            self._sd = np.maximum(np.asarray(feats["sd"], dtype=np.float64), float(feats.get("sd_floor", 1e-3)))
            self._grid, self._bins = int(feats["grid"]), int(feats["bins"])

    def image_z(self, pixels: np.ndarray) -> tuple[float, str]:
        """Largest |z| of the prepared image's features, and which feature group it came from."""
        z = np.abs((image_features(pixels, self._grid, self._bins) - self._mean) / self._sd)
        at = int(np.argmax(z))
        return float(z[at]), ("layout" if at < self._grid * self._grid else "histogram")

    def check(self, raw: np.ndarray | None, pixels: np.ndarray, probabilities: np.ndarray) -> Verdict:
        """The verdict for one image: ``raw`` decoded (None if unknown), ``pixels`` prepared."""
        if not self.enabled or self.section is None:
            return Verdict(None, GUARD_OFF if self.section is None else "guard off: unknown ood reference")
        ref = self.section.reference
        checks: dict[str, Any] = {}
        reasons = []
        if raw is not None:
            reasons += self._raw_checks(np.asarray(raw), ref, checks)
        z, where = self.image_z(pixels)
        checks["image_z"] = round(z, 3)
        if z > float(ref["image_threshold"]):
            reasons.append(f"image statistics unlike the training images ({where} z {z:.1f} > "
                           f"{float(ref['image_threshold']):.1f})")
        score = float(np.max(probabilities))
        checks[self.section.score] = round(score, 6)
        if score < self.section.threshold:
            reasons.append(f"score below the validation threshold ({self.section.score} {score:.3f} < "
                           f"{self.section.threshold:.3f})")
        if reasons:
            return Verdict(False, reasons[0], checks)
        return Verdict(True, "in distribution", checks)

    @staticmethod
    def _raw_checks(raw: np.ndarray, ref: dict[str, Any], checks: dict[str, Any]) -> list[str]:
        colour = colourfulness(raw)
        checks["colourfulness"] = round(colour, 3)
        return raw_reasons(colour, int(raw.shape[0]), int(raw.shape[1]), ref)


def raw_reasons(colour: float, height: int, width: int, ref: dict[str, Any]) -> list[str]:
    """Why a decoded image of this colourfulness and size is not like the training images."""
    reasons = []
    if ref.get("grayscale") and colour > float(ref["colour_limit"]):
        reasons.append(f"colour image, model trained on {ref.get('trained_on', 'grayscale images')}")
    size = ref.get("size") or {}
    if not size:
        return reasons
    aspect = width / height
    tol = float(size.get("aspect_tolerance", 1.25))
    if not float(size["aspect_min"]) / tol <= aspect <= float(size["aspect_max"]) * tol:
        reasons.append(f"aspect ratio {aspect:.2f} outside the training range "
                       f"{float(size['aspect_min']):.2f}-{float(size['aspect_max']):.2f}")
    if min(height, width) < float(size.get("min_side_limit", 0)):
        reasons.append(f"image {width}x{height} is much smaller than the training images "
                       f"(smallest side {int(size['min_side'])} px)")
    return reasons
