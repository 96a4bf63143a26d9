"""Audit: exact and near duplicates, label conflicts, cross-split leakage, JSON, exit codes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from edgemri.cli import main
from edgemri.data.audit import audit, dhash, hamming, hamming_pairs
from edgemri.data.synth import synthesize


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("synth") / "brain", "brain4", per_class=4, size=48, seed=5)


def test_clean_synthetic_set(clean):
    report = audit(clean)
    assert report["images"] == 16 and report["verdict"] == "clean"
    assert report["counts"] == {"all": {c: 4 for c in ("glioma", "meningioma", "notumor", "pituitary")}}
    assert report["sizes"] == {"48x48": 16} and report["modes"] == {"L": 16}
    assert report["exact"]["groups"] == 0 and report["near"]["pairs"] == 0


def test_exact_near_and_cross_label_duplicates(tmp_path, clean):
    root = shutil.copytree(clean, tmp_path / "d")
    src = root / "glioma" / "glioma_0000.png"
    shutil.copy(src, root / "notumor" / "copy_under_other_label.png")  # same pixels, two labels
    # a slightly brightened copy, and an RGB re-save of a gray image, are NEAR duplicates
    # (different canonical pixels, same picture)
    ImageEnhance.Brightness(Image.open(root / "meningioma" / "meningioma_0001.png")).enhance(1.04).save(
        root / "meningioma" / "brighter.png")
    Image.open(src).convert("RGB").save(root / "glioma" / "same_as_rgb.png")
    report = audit(root)
    ex, near = report["exact"], report["near"]
    assert ex["groups"] == 1 and ex["images_in_groups"] == 2 and ex["cross_label_groups"] == 1
    assert report["identical_files"] == 1
    near_paths = {frozenset((p["a"]["path"].rsplit("/", 1)[1], p["b"]["path"].rsplit("/", 1)[1]))
                  for p in near["listed"]}
    assert frozenset(("meningioma_0001.png", "brighter.png")) in near_paths
    assert frozenset(("glioma_0000.png", "same_as_rgb.png")) in near_paths
    assert report["verdict"] == "risk"  # all inside one folder: a random split would leak them
    assert "under two labels" in report["verdict_reason"]


def test_leak_across_split_folders_and_against(tmp_path, clean, capsys):
    root = tmp_path / "splits"
    shutil.copytree(clean, root / "train")
    (root / "test" / "pituitary").mkdir(parents=True)
    shutil.copy(clean / "pituitary" / "pituitary_0002.png", root / "test" / "pituitary" / "leaked.png")
    shutil.copy(clean / "glioma" / "glioma_0003.png", root / "test" / "pituitary" / "leaked_wrong_label.png")
    report = audit(root)
    assert report["layout"] == "split-folders"
    assert report["exact"]["cross_split_groups"] == 2 and report["exact"]["cross_label_groups"] == 1
    assert report["verdict"] == "leak"

    json_out = tmp_path / "audit.json"
    assert main(["data", "audit", str(root), "--json", str(json_out)]) == 0
    assert json.loads(json_out.read_text())["verdict"] == "leak"
    assert "LEAK" in capsys.readouterr().out
    assert main(["data", "audit", str(root), "--fail-on-leak", "-q"]) == 3
    assert "data leakage" in capsys.readouterr().err

    other = tmp_path / "external"
    (other / "glioma").mkdir(parents=True)
    shutil.copy(clean / "glioma" / "glioma_0000.png", other / "glioma" / "x.png")
    versus = audit(clean, against=other)
    assert set(versus["counts"]) == {"root", "against"}
    assert versus["exact"]["cross_split_groups"] == 1 and versus["verdict"] == "leak"
    assert main(["data", "audit", str(clean), "--fail-on-leak", "-q"]) == 0


def test_unreadable_files_are_reported_not_fatal(tmp_path, clean):
    root = shutil.copytree(clean, tmp_path / "d")
    (root / "notumor" / "broken.png").write_bytes(b"\x89PNG broken")
    report = audit(root)
    assert len(report["unreadable"]) == 1 and report["unreadable"][0]["path"].endswith("broken.png")
    assert report["images"] == 17


def test_dhash_survives_resize_and_jpeg_but_separates_different_images(clean):
    a = np.asarray(Image.open(clean / "glioma" / "glioma_0000.png"))
    b = np.asarray(Image.open(clean / "notumor" / "notumor_0000.png"))
    resized = np.asarray(Image.fromarray(a).resize((96, 96), Image.Resampling.BILINEAR))
    assert len(dhash(a)) == 32  # 256 bits
    assert hamming(dhash(a), dhash(resized)) <= 16
    assert hamming(dhash(a), dhash(b)) > 16


def test_hamming_pairs_matches_brute_force():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, (40, 4), dtype=np.uint64)
    base[10] = base[3]
    base[10, 1] ^= np.uint64(0b1011)  # distance 3
    base[33] = base[3]  # distance 0
    pairs = {tuple(p) for p in hamming_pairs(base, threshold=3, block=7).tolist()}
    brute = {(i, j) for i in range(40) for j in range(i + 1, 40)
             if sum((int(x) ^ int(y)).bit_count() for x, y in zip(base[i], base[j])) <= 3}
    assert pairs == brute and {(3, 10), (3, 33), (10, 33)} <= pairs
