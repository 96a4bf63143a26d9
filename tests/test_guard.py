"""The out-of-distribution guard: what it flags, why it says so, and 'guard off' without a section."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgemri.runtime.guard import GUARD_OFF, Guard, colourfulness, image_features, raw_reasons
from edgemri.runtime.manifest import Manifest, OODGuard, sidecar_path


def _training_like(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    """Dark-background gray 'scans': a bright disc in the middle, a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    disc = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2) * 150.0
    imgs = np.clip(disc[None] + rng.normal(0, 12, (n, size, size)) + 10, 0, 255).astype(np.uint8)
    return np.repeat(imgs[..., None], 3, axis=-1)


def _section(size: int = 16) -> OODGuard:
    from edgemri.calibrate import fit_reference, image_threshold

    train = _training_like(60, size)
    feats = np.stack([image_features(p) for p in train])
    ref = fit_reference([0.0] * len(train), [(224, 224)] * len(train), feats, "grayscale MRI")
    ref["image_threshold"] = image_threshold(ref, _training_like(40, size, seed=1))
    return OODGuard(score="msp", threshold=0.5, reference=ref)


@pytest.mark.runtime
def test_features_and_colourfulness() -> None:
    img = _training_like(1)[0]
    feats = image_features(img)
    assert feats.shape == (64 + 16,)
    assert np.sum(feats[64:] ** 2) == pytest.approx(1.0)  # sqrt of fractions that sum to 1
    assert colourfulness(img) == 0.0 and colourfulness(img[..., 0]) == 0.0
    colour = img.copy()
    colour[..., 0] = 255
    assert colourfulness(colour) > 10


def test_guard_passes_training_like_and_says_why_otherwise() -> None:
    guard = Guard(_section())
    sure = np.array([0.9, 0.05, 0.05])
    good = _training_like(1, seed=3)[0]
    gray_raw = np.zeros((224, 224), np.uint8)
    assert guard.check(gray_raw, good, sure).in_distribution is True

    colour_raw = np.zeros((224, 224, 3), np.uint8)
    colour_raw[..., 0] = 200
    verdict = guard.check(colour_raw, good, sure)
    assert verdict.in_distribution is False and verdict.reason == "colour image, model trained on grayscale MRI"

    noise = np.random.default_rng(5).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    verdict = guard.check(None, noise, sure)
    assert not verdict.in_distribution and verdict.reason.startswith("image statistics unlike the training")

    verdict = guard.check(None, good, np.array([0.4, 0.35, 0.25]))
    assert not verdict.in_distribution and verdict.reason.startswith("score below the validation threshold")
    assert verdict.checks["msp"] == pytest.approx(0.4)


def test_size_checks_use_the_training_range() -> None:
    ref = _section().reference
    assert raw_reasons(0.0, 300, 300, ref) == []  # larger than training: resizing is normal
    assert "aspect ratio" in raw_reasons(0.0, 100, 300, ref)[0]
    assert "much smaller" in raw_reasons(0.0, 50, 50, ref)[0]


@pytest.mark.runtime
def test_no_section_is_guard_off(tiny_models) -> None:
    from edgemri.runtime.predictor import Predictor

    pred = Predictor.load(tiny_models.tflite_int8).predict_one(tiny_models.pixels(1)[0])
    assert pred.in_distribution is None and pred.verdict.reason == GUARD_OFF
    assert pred.to_dict()["in_distribution"] is None
    assert Guard(OODGuard(reference={"version": 99})).check(None, np.zeros((16, 16, 3), np.uint8),
                                                            np.ones(3) / 3).in_distribution is None


def _guarded_copy(tiny_models, tmp_path, threshold: float) -> object:
    folder = tmp_path / "m"
    shutil.copytree(tiny_models.tflite_fp32.parent, folder)
    model = folder / tiny_models.tflite_fp32.name
    section = _section()
    ref = {**section.reference, "image_threshold": 1e9, "size": {}}
    manifest = Manifest.load(sidecar_path(model))
    manifest.replace(ood=OODGuard(score="msp", threshold=threshold, reference=ref)).save(sidecar_path(model))
    return model


@pytest.mark.runtime
def test_predict_prints_the_verdict_and_reject_ood_exits_non_zero(tiny_models, tmp_path, capsys) -> None:
    from PIL import Image

    from edgemri.cli import main

    img = tmp_path / "scan.png"
    Image.fromarray(_training_like(1)[0][..., 0]).save(img)
    photo = tmp_path / "photo.png"
    colour = np.zeros((16, 16, 3), np.uint8)
    colour[..., 2] = 220
    Image.fromarray(colour).save(photo)

    model = _guarded_copy(tiny_models, tmp_path, threshold=0.0)
    assert main(["predict", str(model), str(img), "--json", "--reject-ood"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["in_distribution"] is True
    assert main(["predict", str(model), str(img), str(photo), "--reject-ood"]) == 3
    captured = capsys.readouterr()
    assert "colour image" in captured.out and "rejected 1 of 2" in captured.err
    assert main(["predict", str(model), str(photo)]) == 0  # without --reject-ood: reported, not failed

    assert main(["predict", str(tiny_models.tflite_int8), str(img)]) == 0
    assert "guard off" in capsys.readouterr().err


@pytest.mark.runtime
def test_fast_features_equal_their_plain_definitions() -> None:
    """colourfulness and the block means are computed with integer tricks; they must equal the plain formulas."""
    rng = np.random.default_rng(7)
    for shape in [(37, 53, 3), (128, 128, 3), (8, 9, 3)]:
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        f = img.astype(np.float64)
        plain = np.abs(f - f.mean(axis=-1, keepdims=True)).mean()
        assert colourfulness(img) == pytest.approx(plain, rel=1e-12)
        gray = np.repeat(img[..., :1], 3, axis=-1)
        feats = image_features(gray)
        h, w = shape[:2]
        r, c = [(h * i) // 8 for i in range(9)], [(w * j) // 8 for j in range(9)]
        means = [gray[r[i]:r[i + 1], c[j]:c[j + 1], 0].astype(np.float64).mean() / 255.0
                 for i in range(8) for j in range(8)]
        np.testing.assert_array_equal(feats[:64], means)
    with pytest.raises(ValueError, match="at least 8x8"):
        image_features(np.zeros((7, 30, 3), dtype=np.uint8))
