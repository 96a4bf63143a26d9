"""Loader: same pixels as the runtime, every bad file reported at once, --skip-bad; class weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgemri.data.discover import Sample, discover
from edgemri.data.loader import load_samples
from edgemri.data.weights import class_weights
from edgemri.errors import DataError
from edgemri.runtime.images import load_image
from edgemri.runtime.manifest import InputSpec
from edgemri.runtime.preprocess import prepare_pixels


def _dataset(root: Path) -> Path:
    rng = np.random.default_rng(1)
    for cls, n in (("a", 5), ("b", 4)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            shape = (20 + i, 24, 3) if i % 2 else (18, 18 + i)  # RGB and gray, odd sizes
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(root / cls / f"{i}.png")
    return root


@pytest.mark.parametrize("color, channels", [("gray3", 3), ("gray", 1), ("rgb", 3)])
def test_matches_runtime_preprocessing_in_order(tmp_path, color, channels):
    index = discover(_dataset(tmp_path))
    spec = InputSpec(height=16, width=12, channels=channels, color=color)
    pixels, labels = load_samples(index.samples, spec, index.classes, progress=False, workers=3)
    assert pixels.shape == (9, 16, 12, channels) and pixels.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.tolist() == [0] * 5 + [1] * 4
    for i, sample in enumerate(index.samples):
        np.testing.assert_array_equal(pixels[i], prepare_pixels(load_image(sample.path), spec))


def test_progress_bar_path_gives_same_result(tmp_path):
    index = discover(_dataset(tmp_path))
    spec = InputSpec(height=8, width=8)
    a, _ = load_samples(index.samples, spec, index.classes, progress=True)
    b, _ = load_samples(index.samples, spec, index.classes, progress=False)
    np.testing.assert_array_equal(a, b)


def test_every_bad_file_in_one_error_or_skipped(tmp_path, capsys):
    root = _dataset(tmp_path)
    (root / "a" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    good = (root / "b" / "2.png").read_bytes()
    (root / "b" / "2.png").write_bytes(good[: len(good) // 2])  # truncated
    index = discover(root)
    spec = InputSpec(height=8, width=8)
    with pytest.raises(DataError) as err:
        load_samples(index.samples, spec, index.classes, progress=False)
    text = err.value.one_line()
    assert "2 of 9 images" in text and "--skip-bad" in text
    assert str(root / "a" / "1.png") in text and str(root / "b" / "2.png") in text
    pixels, labels = load_samples(index.samples, spec, index.classes, skip_bad=True, progress=False)
    assert pixels.shape[0] == labels.shape[0] == 7
    assert labels.tolist() == [0] * 4 + [1] * 3
    assert "skipped 2 unreadable image(s) of 9" in capsys.readouterr().err


def test_unknown_label_and_empty_input(tmp_path):
    spec = InputSpec(height=8, width=8)
    with pytest.raises(DataError, match="not among the classes"):
        load_samples([Sample(tmp_path / "x.png", "zebra")], spec, ["a", "b"], progress=False)
    pixels, labels = load_samples([], spec, ["a"], progress=False)
    assert pixels.shape == (0, 8, 8, 3) and labels.shape == (0,)


def test_class_weights_balanced():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    weights = class_weights(labels, 3)
    assert weights == pytest.approx({0: 10 / (3 * 6), 1: 10 / (3 * 3), 2: 10 / (3 * 1)})
    # every class then carries the same total weight
    assert {round(weights[c] * (labels == c).sum(), 9) for c in range(3)} == {round(10 / 3, 9)}
    absent = class_weights(np.array([0, 0, 2]), 3)
    assert absent[1] == 0.0 and absent[0] == pytest.approx(3 / (2 * 2))
    with pytest.raises(ValueError):
        class_weights(np.array([0, 3]), 3)
