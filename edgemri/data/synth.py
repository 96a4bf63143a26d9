"""Synthetic, deterministic, MRI-like (and ultrasound-like) classification datasets.

Why: the tests, CI and ``make demo`` need data that is small, free of licences and patient data,
identical on every machine, and still *shaped* like the real task, so a pipeline bug (wrong
colour handling, a broken quantizer) shows up as an accuracy drop rather than passing silently.

``brain4`` / ``binary`` (axial head-phantom slices, T1-with-contrast look):
  head ellipse with a bright scalp, dark skull, a brain with grey/white-matter texture, dark
  ventricles and a midline fissure; a smooth multiplicative bias field, Rician noise and random
  gain. Every class, ``notumor`` included, also gets 0-2 small bright "vessel" dots, so "any
  bright spot" is not the answer. The tumour classes differ by their lesion:

  * ``glioma``: intra-axial, in one hemisphere, large (r 0.17-0.28 of the head), irregular
    outline, bright enhancing rim around a darker necrotic core, with a dark oedema halo.
  * ``meningioma``: extra-axial, touching the inner skull at a random angle, round, sharp edged,
    homogeneously bright (r 0.13-0.22).
  * ``pituitary``: small (r 0.08-0.13), round, bright, on the midline just behind the centre.

  Lesion contrast is scaled by a random factor (0.6-1.0), so some cases are subtle.
  ``binary`` is ``notumor`` against ``tumor`` (one of the three lesion kinds at random).

``busi3`` (breast ultrasound): skin line, fat and fibroglandular layers with laterally
  elongated Rayleigh speckle and depth attenuation, dark fat lobules as distractors;
  ``benign`` = oval, wider-than-tall, smooth, hypoechoic with posterior enhancement;
  ``malignant`` = irregular/spiculated, taller-than-wide, very dark and heterogeneous, with
  posterior shadowing; ``normal`` = no mass.

Each image has its own random stream ``default_rng([seed, task, class, i])``, so the first N
images are the same whatever ``per_class`` is. Images are 8-bit grayscale PNGs written into a
temporary folder that is renamed into place (an interrupted run leaves nothing half-written).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from edgemri.atomic import atomic_dir, write_json
from edgemri.errors import UsageError

TASKS: dict[str, tuple[str, ...]] = {
    "brain4": ("glioma", "meningioma", "notumor", "pituitary"),
    "binary": ("notumor", "tumor"),
    "busi3": ("benign", "malignant", "normal"),
}
_TASK_IDS = {name: i for i, name in enumerate(TASKS)}


def synthesize(out: str | os.PathLike[str], task: str = "brain4", per_class: int = 40, size: int = 64,
               seed: int = 0, overwrite: bool = False) -> Path:
    """Write ``out/<class>/<class>_NNNN.png`` (+ ``synth.json``) and return ``out``."""
    if task not in TASKS:
        from edgemri.registry import unknown_choice

        raise unknown_choice("synthetic task", task, list(TASKS))
    if per_class < 1 or size < 16:
        raise UsageError(f"need --per-class >= 1 and --size >= 16 (got {per_class}, {size})")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"{out} already exists and is not empty", "Pass --overwrite to replace it")
    classes = TASKS[task]
    with atomic_dir(out) as tmp:
        for ci, label in enumerate(classes):
            (tmp / label).mkdir()
            for i in range(per_class):
                rng = np.random.default_rng([seed, _TASK_IDS[task], ci, i])
                arr = render(task, label, size, rng)
                Image.fromarray(arr, mode="L").save(tmp / label / f"{label}_{i:04d}.png", optimize=False)
        write_json(tmp / "synth.json", {"task": task, "classes": list(classes), "per_class": per_class,
                                        "size": size, "seed": seed, "generator": "edgemri.data.synth v1"})
    return out


def render(task: str, label: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One uint8 (size, size) image of ``label``."""
    if task == "busi3":
        img = _ultrasound(label, size, rng)
    else:
        kind = label
        if task == "binary" and label == "tumor":
            kind = ("glioma", "meningioma", "pituitary")[int(rng.integers(3))]
        img = _head(kind, size, rng)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- building blocks

def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [-1, 1], y pointing down."""
    t = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    return np.meshgrid(t, t, indexing="xy")


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Band-limited noise in about [-1, 1]: a cells x cells random grid, bicubic-upsampled."""
    coarse = rng.uniform(-1.0, 1.0, (cells, cells)).astype(np.float32)
    img = Image.fromarray(coarse, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float64)


def _soft(d: np.ndarray, edge: float) -> np.ndarray:
    """Soft inside-mask of a normalized distance d (inside where d < 1); ``edge`` = blur width."""
    return 1.0 / (1.0 + np.exp(np.clip((d - 1.0) / max(edge, 1e-3), -50, 50)))


def _blob(u: np.ndarray, v: np.ndarray, cu: float, cv: float, radius: float, rng: np.random.Generator,
          irregular: float = 0.0, aspect: float = 1.0, angle: float = 0.0, spikes: float = 0.0) -> np.ndarray:
    """Normalized distance to a blob whose radius varies with angle (irregular/spiculated)."""
    du, dv = u - cu, v - cv
    ca, sa = np.cos(angle), np.sin(angle)
    pu, pv = (du * ca + dv * sa) / aspect, (-du * sa + dv * ca)
    theta = np.arctan2(pv, pu)
    r = np.ones_like(theta)
    for k in (2, 3, 5):
        r += irregular * rng.uniform(0.3, 1.0) / k * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    if spikes:
        n = int(rng.integers(7, 13))
        r += spikes * np.maximum(0.0, np.cos(n * theta + rng.uniform(0, 2 * np.pi))) ** 6
    return np.hypot(pu, pv) / (radius * np.maximum(r, 0.3))


def _rician(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """MRI magnitude noise: |signal + complex Gaussian|."""
    return np.hypot(img + rng.normal(0, sigma, img.shape), rng.normal(0, sigma, img.shape))


# ---------------------------------------------------------------- MRI head phantom

def _head(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    x, y = _grid(size)
    cx, cy = rng.normal(0, 0.04, 2)
    a, b = rng.uniform(0.68, 0.82), rng.uniform(0.80, 0.92)
    rot = rng.uniform(-0.15, 0.15)
    c, s = np.cos(rot), np.sin(rot)
    u = ((x - cx) * c + (y - cy) * s) / a  # head frame: the head ellipse is the unit circle
    v = (-(x - cx) * s + (y - cy) * c) / b
    rho = np.hypot(u, v)
    px = 2.0 / size / min(a, b)  # one pixel in head units: edges stay about a pixel soft
    wobble = 0.02 * _smooth_noise(rng, size, 6)

    head = _soft(rho + wobble, px)
    skull = _soft(rho / 0.93, px)
    brain = _soft((rho + wobble) / 0.86, px)
    white = _soft((rho + 0.08 * _smooth_noise(rng, size, 7)) / 0.58, 3 * px)
    img = 0.72 * head - 0.62 * skull + 0.40 * brain  # scalp 0.72, bone 0.10, brain ~0.50
    img += brain * (0.10 * white + 0.05 * _smooth_noise(rng, size, 12) + 0.03 * _smooth_noise(rng, size, 24))
    # ventricles (butterfly) and the midline fissure
    vsize = rng.uniform(0.06, 0.12)
    for side in (-1.0, 1.0):
        vent = _soft(_blob(u, v, side * 0.09, rng.uniform(-0.12, -0.02), vsize, rng, aspect=0.6,
                           angle=side * 0.5), px)
        img -= 0.32 * vent * brain
    img -= 0.18 * brain * np.exp(-((u / (0.6 * px + 0.01)) ** 2)) * (np.abs(v) < 0.8)
    # distractors on every class: small bright vessels / choroid plexus
    for _ in range(int(rng.integers(0, 3))):
        ang, rad = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.7)
        dot = _soft(_blob(u, v, rad * np.cos(ang), rad * np.sin(ang), rng.uniform(0.02, 0.04), rng), px)
        img += rng.uniform(0.1, 0.25) * dot * brain
    img += _lesion(kind, u, v, px, brain, rng)
    bias = 1.0 + 0.22 * (np.cos(rng.uniform(0, 2 * np.pi)) * x + np.sin(rng.uniform(0, 2 * np.pi)) * y)
    bias += 0.10 * _smooth_noise(rng, size, 3)
    img = img * bias * rng.uniform(0.8, 1.1)
    return np.clip(_rician(np.clip(img, 0, None), rng.uniform(0.02, 0.05), rng), 0.0, 1.0)


def _lesion(kind: str, u: np.ndarray, v: np.ndarray, px: float, brain: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
    """Intensity change a lesion of ``kind`` adds (zero for notumor)."""
    contrast = rng.uniform(0.6, 1.0)
    if kind == "glioma":
        side = rng.choice([-1.0, 1.0])
        cu, cv, r = side * rng.uniform(0.25, 0.45), rng.uniform(-0.45, 0.3), rng.uniform(0.17, 0.28)
        d = _blob(u, v, cu, cv, r, rng, irregular=0.6, aspect=rng.uniform(0.8, 1.25), angle=rng.uniform(0, 3))
        edema = _soft(d / 1.45, 4 * px) - _soft(d, 2 * px)
        rim = _soft(d, 1.5 * px) - _soft(d / 0.65, 2 * px)
        core = _soft(d / 0.65, 2 * px)
        return contrast * brain * (0.5 * rim - 0.22 * core - 0.12 * edema)
    if kind == "meningioma":
        ang, r = rng.uniform(0, 2 * np.pi), rng.uniform(0.13, 0.22)
        dist = 0.86 - 0.7 * r
        d = _blob(u, v, dist * np.cos(ang), dist * np.sin(ang), r, rng, irregular=0.1)
        return contrast * 0.5 * _soft(d, px) * _soft(np.hypot(u, v) / 0.9, px)
    if kind == "pituitary":
        r = rng.uniform(0.08, 0.13)
        d = _blob(u, v, rng.normal(0, 0.02), rng.uniform(0.12, 0.28), r, rng, irregular=0.15,
                  aspect=rng.uniform(1.0, 1.4))
        return contrast * 0.55 * _soft(d, px) * brain
    if kind == "notumor":
        return np.zeros_like(u)
    raise ValueError(f"unknown lesion kind {kind}")


# ---------------------------------------------------------------- ultrasound

def _ultrasound(label: str, size: int, rng: np.random.Generator) -> np.ndarray:
    x, y = _grid(size)
    depth = (y + 1.0) / 2.0  # 0 at the probe, 1 at the bottom
    skin = rng.uniform(0.04, 0.08)
    fat_end = skin + rng.uniform(0.2, 0.35) + 0.05 * _smooth_noise(rng, size, 4)
    gland_end = fat_end + rng.uniform(0.3, 0.45) + 0.06 * _smooth_noise(rng, size, 4)
    echo = np.where(depth < skin, 0.9, np.where(depth < fat_end, 0.35, np.where(depth < gland_end, 0.6, 0.3)))
    echo = echo + 0.08 * _smooth_noise(rng, size, 10)
    px = 2.0 / size
    for _ in range(int(rng.integers(1, 4))):  # fat lobules: dark ovals, in every class
        d = _blob(x, y, rng.uniform(-0.8, 0.8), -1 + 2 * (skin + rng.uniform(0.05, 0.2)),
                  rng.uniform(0.06, 0.12), rng, irregular=0.2, aspect=rng.uniform(1.5, 2.5))
        echo = echo * (1 - 0.45 * _soft(d, 2 * px))
    if label != "normal":
        echo = _mass(label, x, y, px, echo, fat_end, rng)
    echo = echo * np.exp(-rng.uniform(0.4, 0.9) * depth) * rng.uniform(0.85, 1.15)
    speckle = rng.rayleigh(1.0 / np.sqrt(np.pi / 2), (size, size))  # mean 1
    speckle = 0.5 * (speckle + np.roll(speckle, 1, axis=1))  # laterally elongated grain
    return np.clip(echo * speckle * 0.9, 0.0, 1.0)


def _mass(label: str, x: np.ndarray, y: np.ndarray, px: float, echo: np.ndarray, fat_end: np.ndarray,
          rng: np.random.Generator) -> np.ndarray:
    cx = rng.uniform(-0.45, 0.45)
    cy = rng.uniform(-0.1, 0.35)
    r = rng.uniform(0.13, 0.24)
    contrast = rng.uniform(0.45, 1.0)
    below = (y > cy) & (np.abs(x - cx) < r * 0.9)
    column = below * np.exp(-np.abs(x - cx) / (r + 1e-6))
    if label == "benign":
        d = _blob(x, y, cx, cy, r, rng, irregular=0.08, aspect=rng.uniform(1.4, 2.0), angle=rng.uniform(-0.2, 0.2))
        mass = _soft(d, 1.5 * px)
        echo = echo * (1 - contrast * 0.7 * mass) * (1 + contrast * 0.35 * column * (1 - mass))
    elif label == "malignant":
        d = _blob(x, y, cx, cy, r, rng, irregular=0.5, aspect=rng.uniform(0.7, 1.05), angle=rng.uniform(-0.4, 0.4),
                  spikes=0.45)
        mass = _soft(d, 1.5 * px)
        inner = 0.15 * _smooth_noise(rng, x.shape[0], 9)
        echo = echo * (1 - contrast * (0.8 + inner) * mass) * (1 - contrast * 0.45 * column * (1 - mass))
    else:
        raise ValueError(f"unknown ultrasound class {label}")
    return echo
