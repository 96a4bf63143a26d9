"""Splits: deterministic, stratified, group-aware, and verified against the files on load."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgemri.data.discover import discover
from edgemri.data.split import Split, make_split
from edgemri.errors import DataError, UsageError


def _dataset(root: Path, counts: dict[str, int], names=lambda cls, i: f"{cls}_{i:03d}.png") -> Path:
    rng = np.random.default_rng(0)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (4, 4), dtype=np.uint8)).save(root / cls / names(cls, i))
    return root


def _assignment(split: Split) -> dict[str, str]:
    return {e.path: e.split for e in split.entries}


def test_deterministic_stratified_and_complete(tmp_path):
    index = discover(_dataset(tmp_path, {"a": 40, "b": 20, "c": 10}))
    s1 = make_split(index, val_fraction=0.2, test_fraction=0.1, seed=3)
    s2 = make_split(index, val_fraction=0.2, test_fraction=0.1, seed=3)
    s3 = make_split(index, val_fraction=0.2, test_fraction=0.1, seed=4)
    assert _assignment(s1) == _assignment(s2) and s1.fingerprint == s2.fingerprint
    assert _assignment(s1) != _assignment(s3) and s1.fingerprint != s3.fingerprint
    counts = Counter((e.split, e.label) for e in s1.entries)
    for cls, n in {"a": 40, "b": 20, "c": 10}.items():
        assert counts[("val", cls)] == round(n * 0.2)
        assert counts[("test", cls)] == round(n * 0.1)
        assert counts[("train", cls)] == n - round(n * 0.2) - round(n * 0.1)
    paths = [s.path for name in ("train", "val", "test") for s in s1.samples(name)]
    assert len(paths) == len(set(paths)) == 70
    assert all(p.is_absolute() and p.exists() for p in paths)


def test_group_pattern_keeps_each_patient_on_one_side(tmp_path):
    # 12 patients x 3 slices; without groups a random split scatters a patient's slices
    root = _dataset(tmp_path, {"a": 18, "b": 18}, names=lambda cls, i: f"P{cls}{i // 3:02d}_s{i % 3}.png")
    index = discover(root)
    grouped = make_split(index, val_fraction=0.34, seed=0, group_pattern=r"^(P\w\d+)_")
    by_patient: dict[str, set[str]] = {}
    for e in grouped.entries:
        by_patient.setdefault(Path(e.path).name.split("_")[0], set()).add(e.split)
    assert len(by_patient) == 12 and all(len(s) == 1 for s in by_patient.values())
    assert {"train", "val"} <= {e.split for e in grouped.entries}
    scattered = make_split(index, val_fraction=0.34, seed=0)
    per_patient = {}
    for e in scattered.entries:
        per_patient.setdefault(Path(e.path).name.split("_")[0], set()).add(e.split)
    assert any(len(s) > 1 for s in per_patient.values())  # proves the group test can fail


def test_bad_options(tmp_path):
    index = discover(_dataset(tmp_path, {"a": 4}))
    with pytest.raises(UsageError, match="capture group"):
        make_split(index, group_pattern=r"P\d+")
    with pytest.raises(UsageError, match="regular expression"):
        make_split(index, group_pattern=r"(P")
    with pytest.raises(UsageError, match="fractions"):
        make_split(index, val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(UsageError, match="unknown split"):
        make_split(index).samples("validation")


def test_split_folders_are_kept_and_val_carved_from_train(tmp_path):
    _dataset(tmp_path / "train", {"a": 10, "b": 10})
    _dataset(tmp_path / "test", {"a": 3, "b": 3})
    split = make_split(discover(tmp_path), val_fraction=0.2, seed=0)
    counts = Counter(e.split for e in split.entries)
    assert counts == {"train": 16, "val": 4, "test": 6}
    assert all(e.path.startswith("test/") for e in split.entries if e.split == "test")
    assert all(e.path.startswith("train/") for e in split.entries if e.split == "val")


def test_save_load_roundtrip_and_change_detection(tmp_path):
    root = _dataset(tmp_path / "data", {"a": 6, "b": 6})
    split = make_split(discover(root), val_fraction=0.34, seed=1)
    out = split.save(tmp_path / "run" / "split.json")
    data = json.loads(out.read_text())
    assert {"path", "class", "split", "sha256"} == set(data["files"][0])
    assert not data["files"][0]["path"].startswith("/")
    loaded = Split.load(out)
    assert loaded.fingerprint == split.fingerprint == data["fingerprint"]
    assert loaded.samples("val") == split.samples("val")
    assert loaded.classes == ["a", "b"]

    victim = root / loaded.entries[0].path
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(victim)
    (root / loaded.entries[1].path).unlink()
    with pytest.raises(DataError) as err:
        Split.load(out)
    text = err.value.one_line()
    assert "1 missing" in text and "1 changed" in text and "edgemri data split" in text
    assert Split.load(out, verify=False).fingerprint == split.fingerprint


def test_load_moved_root_and_malformed_file(tmp_path):
    root = _dataset(tmp_path / "data", {"a": 3, "b": 3})
    out = make_split(discover(root), seed=0).save(tmp_path / "split.json")
    moved = root.rename(tmp_path / "moved")
    with pytest.raises(DataError):
        Split.load(out)
    assert Split.load(out, root=moved).root == moved.resolve()
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="not a valid split.json"):
        Split.load(tmp_path / "bad.json")
    with pytest.raises(DataError, match="does not exist"):
        Split.load(tmp_path / "missing.json")


def test_duplicate_clusters_stay_in_one_split(tmp_path):
    from edgemri.data.audit import audit, duplicate_groups
    from edgemri.data.synth import synthesize

    root = synthesize(tmp_path / "d", "binary", per_class=12, size=32, seed=0)
    for i in range(6):  # six images each copied twice more under new names
        src = root / "tumor" / f"tumor_{i:04d}.png"
        for k in range(2):
            (root / "tumor" / f"copy{k}_{i}.png").write_bytes(src.read_bytes())
    index = discover(root)
    groups = duplicate_groups(index)
    assert len(groups) == 18 and len(set(groups.values())) == 6
    split = make_split(index, val_fraction=0.4, seed=0, groups=groups)
    where = {e.path: e.split for e in split.entries}
    for i in range(6):
        sides = {where[f"tumor/tumor_{i:04d}.png"], where[f"tumor/copy0_{i}.png"], where[f"tumor/copy1_{i}.png"]}
        assert len(sides) == 1
    # the same data split naively leaks copies into val (so the assertion above can fail)
    naive = make_split(index, val_fraction=0.4, seed=0)
    nwhere = {e.path: e.split for e in naive.entries}
    assert any(len({nwhere[f"tumor/tumor_{i:04d}.png"], nwhere[f"tumor/copy0_{i}.png"],
                    nwhere[f"tumor/copy1_{i}.png"]}) > 1 for i in range(6))
    assert audit(root)["exact"]["groups"] == 6


def test_k_folds_test_every_file_once_keep_groups_and_round_trip(tmp_path):
    # 14 patients x 3 slices in "a", 9 single files in "b"
    root = _dataset(tmp_path, {"a": 42, "b": 9}, names=lambda cls, i: f"P{cls}{i // 3:02d}_s{i % 3}.png"
                    if cls == "a" else f"{cls}_{i:03d}.png")
    index = discover(root)
    folds = [make_split(index, val_fraction=0.2, seed=1, group_pattern=r"^(Pa\d+)_", folds=3, fold=i)
             for i in range(3)]
    tested = Counter(e.path for s in folds for e in s.entries if e.split == "test")
    assert sorted(tested.values()) == [1] * 51  # each file in exactly one fold's test split
    for s in folds:
        counts = Counter((e.split, e.label) for e in s.entries)
        assert 12 <= counts[("test", "a")] <= 18 and counts[("test", "b")] == 3  # about a third of each class
        assert counts[("val", "a")] > 0 and counts[("val", "b")] > 0 and counts[("train", "b")] > 0
        patients: dict[str, set[str]] = {}
        for e in s.entries:
            if e.label == "a":
                patients.setdefault(Path(e.path).name.split("_")[0], set()).add(e.split)
        assert all(len(sides) == 1 for sides in patients.values())
    assert _assignment(folds[1]) == _assignment(make_split(index, val_fraction=0.2, seed=1,
                                                           group_pattern=r"^(Pa\d+)_", folds=3, fold=1))
    folds[2].save(tmp_path / "split.json")
    again = Split.load(tmp_path / "split.json")
    assert (again.folds, again.fold, again.fingerprint) == (3, 2, folds[2].fingerprint)
    with pytest.raises(UsageError, match="fold 3 of 3"):
        make_split(index, folds=3, fold=3)
    with pytest.raises(UsageError, match="fold 0 of 1"):
        make_split(index, folds=1)
