"""Deterministic, stratified, optionally group-aware train/val/test split, saved as ``split.json``.

Why a file: a run must be reproducible and auditable. ``split.json`` lists every file (path
relative to the dataset root), its class, its split and the SHA-256 of its bytes. Loading it
checks the hashes, so a run is never silently evaluated on images that changed since training.
``fingerprint`` is one hash over the sorted ``(path, class, split, sha256)`` rows: two runs with
the same fingerprint saw exactly the same images in the same roles.

Group-aware: with ``group_pattern`` (a regex with one capture group, searched in the file name)
every file of a group (a patient) lands in the same split, so a patient's slices cannot leak
from train into val. Files the pattern does not match are groups of their own.

Stratification: groups are bucketed by their majority class; each bucket is shuffled with the
seed and cut at the requested fractions (counted in files), so every split gets about the same
class mix. In the split-folders layout the publisher's splits are kept; a missing ``val`` is
carved out of ``train`` the same way.

K-fold (``folds`` K >= 2, ``fold`` i): each bucket's shuffled order is cut into K runs of about equal
file counts; run i is the test split, validation is taken from the groups that follow it, the rest
trains. The K splits of one seed test every file exactly once, so a small dataset (BUSI: 626 images)
is measured on all of its images instead of one 94-image test split.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgemri.atomic import write_json
from edgemri.data.discover import SPLIT_NAMES, DatasetIndex, Sample
from edgemri.errors import DataError, UsageError

SPLIT_VERSION = 1
_RESPLIT = "Re-create it with `edgemri data split ROOT --out split.json` (or train again without --split)"


@dataclass(frozen=True)
class SplitEntry:
    path: str  # relative to the split's root, POSIX separators
    label: str
    split: str
    sha256: str


@dataclass
class Split:
    """Which file is in which split, with content hashes; see the module docstring."""

    root: Path
    classes: list[str]
    entries: list[SplitEntry] = field(repr=False)
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.0
    group_pattern: str | None = None
    folds: int = 0  # k-fold: the test split is fold ``fold`` of ``folds`` (0: a plain split)
    fold: int = 0

    @property
    def fingerprint(self) -> str:
        rows = sorted((e.path, e.label, e.split, e.sha256) for e in self.entries)
        digest = hashlib.sha256()
        for row in rows:
            digest.update(("\t".join(row) + "\n").encode("utf-8"))
        return digest.hexdigest()

    def samples(self, name: str) -> list[Sample]:
        """The samples of one split (absolute paths), in a stable order."""
        if name not in SPLIT_NAMES:
            raise UsageError(f"unknown split {name!r}", f"Use one of {', '.join(SPLIT_NAMES)}")
        return [Sample(self.root / e.path, e.label, e.split) for e in self.entries if e.split == name]

    def counts(self) -> dict[str, dict[str, int]]:
        """{split: {class: n}} for reports."""
        counter = Counter((e.split, e.label) for e in self.entries)
        return {s: {c: counter.get((s, c), 0) for c in self.classes}
                for s in SPLIT_NAMES if any(e.split == s for e in self.entries)}

    def to_dict(self) -> dict:
        return {
            "version": SPLIT_VERSION,
            "root": str(self.root),
            "classes": list(self.classes),
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "group_pattern": self.group_pattern,
            **({"folds": self.folds, "fold": self.fold} if self.folds else {}),
            "fingerprint": self.fingerprint,
            "counts": self.counts(),
            "files": [{"path": e.path, "class": e.label, "split": e.split, "sha256": e.sha256}
                      for e in self.entries],
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None,
             verify: bool = True) -> Split:
        """Read ``split.json``; with ``verify`` every file must still exist with the same hash.

        ``root`` overrides the stored root (the dataset moved); paths inside stay relative.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            split = cls(
                root=Path(root).expanduser().resolve() if root else Path(data["root"]),
                classes=list(data["classes"]),
                entries=[SplitEntry(f["path"], f["class"], f["split"], f["sha256"]) for f in data["files"]],
                seed=int(data.get("seed", 0)),
                val_fraction=float(data.get("val_fraction", 0.0)),
                test_fraction=float(data.get("test_fraction", 0.0)),
                group_pattern=data.get("group_pattern"),
                folds=int(data.get("folds", 0)),
                fold=int(data.get("fold", 0)),
            )
        except FileNotFoundError as exc:
            raise DataError(f"split file {path} does not exist", _RESPLIT) from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"split file {path} is not a valid split.json ({type(exc).__name__}: {exc})",
                            _RESPLIT) from exc
        if verify:
            split.verify(source=path)
        return split

    def verify(self, source: str | os.PathLike[str] = "split.json") -> None:
        """Raise ``DataError`` listing the files that are missing or changed since the split."""
        paths = [self.root / e.path for e in self.entries]
        hashes = file_hashes(paths, missing_ok=True)
        missing = [e.path for e, h in zip(self.entries, hashes) if h is None]
        changed = [e.path for e, h in zip(self.entries, hashes) if h is not None and h != e.sha256]
        if missing or changed:
            parts = []
            if missing:
                parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
            if changed:
                parts.append(f"{len(changed)} changed (e.g. {', '.join(changed[:3])})")
            raise DataError(f"the images of {source} under {self.root} differ from when it was made: "
                            + "; ".join(parts), _RESPLIT)


def make_split(index: DatasetIndex, val_fraction: float = 0.15, test_fraction: float = 0.0,
               seed: int = 0, group_pattern: str | None = None,
               groups: Mapping[Path, str] | None = None, folds: int = 0, fold: int = 0) -> Split:
    """Assign every sample of ``index`` to train/val/test; deterministic for a given seed.

    ``groups`` ({path: group id}, e.g. ``audit.duplicate_groups``) keeps the listed files
    together; it takes precedence over ``group_pattern`` for the files it names. ``folds`` >= 2
    makes the test split fold ``fold`` of a k-fold partition (``test_fraction`` is then unused).
    """
    check_folds(folds, fold)
    if folds:
        test_fraction = 0.0
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0 and val_fraction + test_fraction < 1.0
            and val_fraction + (1 / folds if folds else 0.0) < 1.0):
        raise UsageError(f"val ({val_fraction}) and test ({1 / folds if folds else test_fraction}) fractions must "
                         "be in [0, 1) and leave something to train on")
    regex = _compile_group(group_pattern)
    samples = sorted(index.samples, key=lambda s: s.path.as_posix())
    fixed = {s.path: s.split for s in samples if s.split}
    free = [s for s in samples if not s.split]
    if folds and (fixed or not free):
        raise UsageError("k-fold splits need a dataset of class folders, not one with train/val/test folders",
                         "Point --data at a folder of class folders, or drop --cv-fold")
    if index.layout == "split-folders" and "val" not in index.splits() and val_fraction > 0:
        free = [s for s in samples if s.split == "train"]
        assigned = _assign(free, val_fraction, 0.0, seed, regex, index.root, groups)
        fixed.update(assigned)
    elif free:
        fixed.update(_assign(free, val_fraction, test_fraction, seed, regex, index.root, groups, (folds, fold)))
    hashes = file_hashes([s.path for s in samples])
    entries = [SplitEntry(_relative(s.path, index.root), s.label, fixed[s.path], h)
               for s, h in zip(samples, hashes)]
    return Split(index.root, list(index.classes), entries, seed, val_fraction,
                 1 / folds if folds else test_fraction, group_pattern, folds, fold)


def check_folds(folds: int, fold: int) -> None:
    """``folds`` 0 (no k-fold) or >= 2 with ``fold`` in 0..folds-1, else a one-line UsageError."""
    if folds == 0 and fold == 0:
        return
    if folds < 2 or not 0 <= fold < folds:
        raise UsageError(f"fold {fold} of {folds} is not a k-fold split",
                         "Use --cv-fold I/K with K >= 2 and I in 0..K-1, e.g. --cv-fold 0/5")


def _compile_group(pattern: str | None) -> re.Pattern | None:
    if not pattern:
        return None
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"--group-pattern {pattern!r} is not a valid regular expression: {exc}") from exc
    if regex.groups < 1:
        raise UsageError(f"--group-pattern {pattern!r} has no capture group",
                         r"Wrap the patient id in parentheses, e.g. '^(P\d+)_'")
    return regex


def group_key(sample: Sample, regex: re.Pattern | None, root: Path,
              groups: Mapping[Path, str] | None = None) -> str:
    """The group of a file: explicit ``groups``, else the pattern's patient id, else its own path."""
    if groups and sample.path in groups:
        return "x:" + groups[sample.path]
    if regex is not None:
        match = regex.search(sample.path.name)
        if match and match.group(1):
            return "g:" + match.group(1)
    return "f:" + _relative(sample.path, root)


def _assign(samples: list[Sample], val_fraction: float, test_fraction: float, seed: int,
            regex: re.Pattern | None, root: Path, explicit: Mapping[Path, str] | None = None,
            kfold: tuple[int, int] = (0, 0)) -> dict[Path, str]:
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[group_key(s, regex, root, explicit)].append(s)
    strata: dict[str, list[str]] = defaultdict(list)
    for key in sorted(groups):
        labels = Counter(s.label for s in groups[key])
        majority = min(labels.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        strata[majority].append(key)
    out: dict[Path, str] = {}
    for ci, label in enumerate(sorted(strata)):
        keys = strata[label]
        rng = np.random.default_rng([seed, ci])
        order = [keys[i] for i in rng.permutation(len(keys))]
        sizes = [len(groups[k]) for k in order]
        names = _fold_names(sizes, val_fraction, *kfold) if kfold[0] else _cut_names(sizes, val_fraction, test_fraction)
        for key, name in zip(order, names):
            for s in groups[key]:
                out[s.path] = name
    return out


def _cut_names(sizes: list[int], val_fraction: float, test_fraction: float) -> list[str]:
    """Split names of shuffled groups of these sizes: test first, then val, the rest train."""
    total = sum(sizes)
    n_test, n_val = _quota(total, len(sizes), test_fraction), _quota(total, len(sizes), val_fraction)
    filled = {"test": 0, "val": 0, "train": 0}
    names = []
    for pos, size in enumerate(sizes):
        if pos == len(sizes) - 1 and filled["train"] == 0:
            name = "train"  # a class always keeps at least one training group
        elif filled["test"] < n_test:
            name = "test"
        elif filled["val"] < n_val:
            name = "val"
        else:
            name = "train"
        filled[name] += size
        names.append(name)
    return names


def _fold_names(sizes: list[int], val_fraction: float, folds: int, fold: int) -> list[str]:
    """Split names for fold ``fold``: the groups starting in its 1/folds of the files test, val follows."""
    total = sum(sizes)
    starts = np.cumsum([0, *sizes[:-1]])
    in_fold = [min(folds - 1, int(start * folds // max(total, 1))) == fold for start in starts]
    first = next((i for i, hit in enumerate(in_fold) if hit), len(sizes))
    rest = [i for i in (*range(first, len(sizes)), *range(first)) if not in_fold[i]]  # the groups after the fold
    names = ["test" if hit else "train" for hit in in_fold]
    n_val, filled = _quota(total, len(sizes), val_fraction), 0
    for i in rest[:-1]:  # the last one trains, so a class always keeps a training group
        if filled >= n_val:
            break
        names[i], filled = "val", filled + sizes[i]
    return names


def _quota(total: int, n_groups: int, fraction: float) -> int:
    """Files wanted in a split: rounded, at least 1 if asked for and the class can spare it."""
    if fraction <= 0:
        return 0
    n = round(total * fraction)
    return max(n, 1) if n_groups >= 2 else 0


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_hashes(paths: list[Path], missing_ok: bool = False) -> list[str | None]:
    """SHA-256 of many files, threaded (hashlib releases the GIL on large buffers)."""

    def one(p: Path) -> str | None:
        try:
            return sha256_file(p)
        except FileNotFoundError as exc:
            if missing_ok:
                return None
            raise DataError(f"image {p} disappeared while hashing", "Re-run on a stable copy of the data") from exc
        except OSError as exc:
            if missing_ok:
                return None
            raise DataError(f"cannot read {p}: {exc.strerror or exc}") from exc

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        return list(pool.map(one, paths))
