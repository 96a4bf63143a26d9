"""Synthetic data: deterministic, the right classes, atomic, and carrying class signal."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from edgemri.cli import main
from edgemri.data.discover import discover
from edgemri.data.loader import load_samples
from edgemri.data.synth import TASKS, synthesize
from edgemri.errors import UsageError
from edgemri.runtime.images import load_image
from edgemri.runtime.manifest import InputSpec


def _digest(root) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.png"))}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_layout_classes_and_images(tmp_path, task):
    root = synthesize(tmp_path / task, task=task, per_class=3, size=40, seed=0)
    index = discover(root)
    assert index.classes == sorted(TASKS[task])
    assert index.counts() == {c: 3 for c in TASKS[task]}
    arr = load_image(index.samples[0].path)
    assert arr.shape == (40, 40) and arr.dtype == np.uint8
    assert 10 < arr.std()  # not blank
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary left behind


def test_deterministic_and_prefix_stable(tmp_path):
    a = _digest(synthesize(tmp_path / "a", "brain4", per_class=3, size=32, seed=7))
    b = _digest(synthesize(tmp_path / "b", "brain4", per_class=3, size=32, seed=7))
    c = _digest(synthesize(tmp_path / "c", "brain4", per_class=3, size=32, seed=8))
    more = _digest(synthesize(tmp_path / "d", "brain4", per_class=4, size=32, seed=7))
    assert a == b
    assert set(a.values()).isdisjoint(c.values())
    assert all(more[k] == v for k, v in a.items())  # first N images do not depend on per_class


def test_overwrite_and_bad_arguments(tmp_path):
    out = synthesize(tmp_path / "s", "binary", per_class=1, size=16, seed=0)
    with pytest.raises(UsageError) as err:
        synthesize(out, "binary", per_class=1, size=16)
    assert "--overwrite" in err.value.one_line()
    synthesize(out, "busi3", per_class=1, size=16, overwrite=True)
    assert discover(out).classes == ["benign", "malignant", "normal"]  # replaced, not merged
    with pytest.raises(UsageError, match='Did you mean "brain4"'):
        synthesize(tmp_path / "x", "brain5")
    assert not (tmp_path / "x").exists()
    with pytest.raises(UsageError):
        synthesize(tmp_path / "x", "brain4", per_class=0)


def test_cli_synth(tmp_path, capsys):
    assert main(["data", "synth", str(tmp_path / "cli"), "--task", "binary", "--per-class", "2", "--size", "24"]) == 0
    assert "wrote 4 images" in capsys.readouterr().out
    assert main(["data", "synth", str(tmp_path / "cli"), "--per-class", "2"]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("task", ["brain4", "busi3"])
def test_classes_are_separable_but_not_trivially(tmp_path, task):
    """A cheap stand-in for "a tiny CNN learns it": nearest class centroid on 16x16 gradient energy.

    Chance is 1/K. The centroid classifier must beat it clearly (the lesions are real signal)
    while staying below 100 % (random placement, contrast and distractors keep it a task).
    """
    root = synthesize(tmp_path / task, task, per_class=30, size=48, seed=1)
    index = discover(root)
    pixels, labels = load_samples(index.samples, InputSpec(48, 48, 1, color="gray"), index.classes, progress=False)
    x = pixels[..., 0].astype(np.float64)
    edges = np.hypot(np.diff(x, axis=1)[:, :, :47], np.diff(x, axis=2)[:, :47, :])
    feats = _pool(edges, 3)
    train = np.arange(len(x)) % 3 != 0
    centroids = np.stack([feats[train & (labels == k)].mean(0) for k in range(len(index.classes))])
    pred = np.argmin(((feats[~train, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    acc = float((pred == labels[~train]).mean())
    chance = 1 / len(index.classes)
    assert chance + 0.15 < acc < 1.0, acc


def _pool(maps: np.ndarray, k: int) -> np.ndarray:
    n, h, w = maps.shape
    h, w = h // k * k, w // k * k
    return maps[:, :h, :w].reshape(n, h // k, k, w // k, k).mean((2, 4)).reshape(n, -1)
