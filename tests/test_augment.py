"""The OpenCV-backed augmentation: exact geometry, photometric fusion, seed-only determinism."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("cv2")

from edgemri.train.augment import AugmentConfig, _warp, augment_batch, preset


def _image() -> np.ndarray:
    img = np.zeros((20, 24, 3), np.float32)
    img[3:9, 4:12] = 200.0
    img[12:15, 15:22] = 70.0
    return img


def test_integer_translation_moves_pixels_exactly_with_zero_fill():
    img = _image()
    matrix = np.array([[1.0, 0.0, -3.0], [0.0, 1.0, 2.0], [0.0, 0.0, 1.0]])  # output (x, y) <- input (x-3, y+2)
    out = _warp(img, matrix)
    expected = np.zeros_like(img)
    expected[:, 3:] = np.roll(img, -2, axis=0)[:, :-3]
    expected[-2:] = 0.0
    np.testing.assert_array_equal(out, expected)


def test_photometric_is_brightness_then_contrast_about_the_mean():
    img = _image()[None]
    cfg = AugmentConfig(brightness=0.1, contrast=0.2)
    out = augment_batch(img.astype(np.uint8), cfg, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    b = rng.uniform(-0.1, 0.1, 1)[0] * 255.0
    f = rng.uniform(0.8, 1.2, 1)[0]
    x = img[0] + b
    expected = np.clip((x - x.mean()) * f + x.mean(), 0, 255)
    np.testing.assert_allclose(out[0], expected, atol=1e-3)


def test_scaled_brightness_multiplies_and_keeps_black_black():
    """torchvision's ColorJitter: x * s, then contrast about the scaled image's mean."""
    img = _image()[None]
    cfg = AugmentConfig(brightness=0.2, contrast=0.2, brightness_mode="scale")
    out = augment_batch(img.astype(np.uint8), cfg, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    s = 1.0 + rng.uniform(-0.2, 0.2, 1)[0]
    f = rng.uniform(0.8, 1.2, 1)[0]
    x = img[0] * s
    np.testing.assert_allclose(out[0], np.clip((x - x.mean()) * f + x.mean(), 0, 255), atol=1e-3)
    only = augment_batch(img.astype(np.uint8), AugmentConfig(brightness=0.5, brightness_mode="scale"),
                         np.random.default_rng(1))
    assert np.all(only[0][img[0] == 0] == 0)  # the background stays black; "add" would lift or keep it
    added = augment_batch(img.astype(np.uint8), AugmentConfig(brightness=0.5), np.random.default_rng(1))
    b = np.random.default_rng(1).uniform(-0.5, 0.5, 1)[0] * 255.0
    np.testing.assert_allclose(added[0][img[0] == 0], max(b, 0.0), atol=1e-3)  # "add" shifts the background


def test_unknown_brightness_mode_is_a_usage_error():
    from edgemri.errors import UsageError

    with pytest.raises(UsageError, match="brightness mode 'multiply'"):
        AugmentConfig(brightness=0.1, brightness_mode="multiply")


def test_batches_depend_on_the_seed_only_not_on_threads():
    pixels = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)

    def batch(seed: int) -> np.ndarray:
        return augment_batch(pixels, preset("mri"), np.random.default_rng(seed))

    serial = [batch(s) for s in range(4)]
    with ThreadPoolExecutor(2) as pool:
        threaded = list(pool.map(batch, range(4)))
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(serial[0], serial[1])


def test_crop_box_is_a_resize_of_that_box():
    """The crop map, warped, is cv2.resize of the box (away from its edges, where the warp may
    read the pixels just outside the box and resize repeats the box's own)."""
    import cv2

    from edgemri.train.augment import box_matrix

    img = np.random.default_rng(3).uniform(0, 255, (32, 48, 1)).astype(np.float32)
    out = _warp(img, box_matrix(8, 4, 24, 16, 32, 48))
    resized = cv2.resize(np.ascontiguousarray(img[4:20, 8:32]), (48, 32), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(out[2:-2, 2:-2, 0], resized[2:-2, 2:-2], atol=1e-3)


def test_random_resized_crop_boxes_follow_torchvision_ranges():
    from edgemri.train.augment import CROP_RATIO, _crop

    rng = np.random.default_rng(0)
    h, w, areas = 40, 60, []
    for _ in range(300):
        m = _crop(0.08, h, w, rng)
        cw, ch = m[0, 0] * w, m[1, 1] * h
        x0, y0 = m[0, 2] - 0.5 * m[0, 0] + 0.5, m[1, 2] - 0.5 * m[1, 1] + 0.5
        assert -1e-9 <= x0 and x0 + cw <= w + 1e-9 and -1e-9 <= y0 and y0 + ch <= h + 1e-9
        assert CROP_RATIO[0] - 1e-9 <= cw / ch <= CROP_RATIO[1] + 1e-9
        areas.append(cw * ch / (h * w))
    assert 0.08 - 1e-9 <= min(areas) < 0.2 and max(areas) > 0.8  # the range is used (a 4:3 box covers at most 0.89 of 3:2)


def test_crop_scale_changes_batches_and_is_validated():
    from edgemri.errors import UsageError

    pixels = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 1), dtype=np.uint8)
    cropped = augment_batch(pixels, AugmentConfig(crop_scale=0.3), np.random.default_rng(1))
    assert AugmentConfig(crop_scale=0.3).geometric and cropped.shape == pixels.shape
    assert not np.array_equal(cropped, pixels.astype(np.float32))
    with pytest.raises(UsageError, match="crop scale 1.5"):
        AugmentConfig(crop_scale=1.5)
