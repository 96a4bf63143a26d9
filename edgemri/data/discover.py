"""Find the images of a dataset folder and the class (and split) of each one.

Two layouts are understood, because those are what public medical sets ship as:

* ``class-folders``: ``root/<class>/**/<image>`` (e.g. Kaggle brain MRI ``Training/``, BUSI).
* ``split-folders``: ``root/{train,val,test}/<class>/**/<image>``: the splits were fixed by the
  publisher and are kept as they are.

Anything else (images loose in the root, a class folder without images, split and class folders
side by side) is a ``DataError`` that names the folder and the layout we expected, because a
silently mis-read dataset trains a model on the wrong labels.

Mask files (BUSI ships ``*_mask.png`` next to each image) are not images to classify; they are
skipped by a glob on the file name, ``*_mask*`` by default (``mask_pattern=None`` keeps them).
Hidden files and folders (``.DS_Store``, ``.ipynb_checkpoints``) and non-image files are ignored:
the files come from ``runtime.images.find_images``, the same function ``edgemri predict DIR`` uses.
"""

from __future__ import annotations

import fnmatch
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edgemri.errors import DataError
from edgemri.runtime.images import find_images, list_folder

SPLIT_NAMES = ("train", "val", "test")
DEFAULT_MASK_PATTERN = "*_mask*"
CLASS_LAYOUT = "root/<class>/<image> (one folder per class)"
SPLIT_LAYOUT = "root/{train,val,test}/<class>/<image>"


@dataclass(frozen=True)
class Sample:
    """One image: absolute path, class name, and the split it belongs to (None = not fixed yet)."""

    path: Path
    label: str
    split: str | None = None


@dataclass(frozen=True)
class DatasetIndex:
    """Every image of a dataset folder with its label; ``classes`` is sorted (the output order)."""

    root: Path
    classes: list[str]
    samples: list[Sample] = field(repr=False)
    layout: str = "class-folders"

    def counts(self) -> dict[str, int]:
        """Images per class, in class order."""
        counter = Counter(s.label for s in self.samples)
        return {c: counter.get(c, 0) for c in self.classes}

    def splits(self) -> list[str]:
        """The fixed splits present (split-folders layout), in train/val/test order."""
        present = {s.split for s in self.samples if s.split}
        return [name for name in SPLIT_NAMES if name in present]


def discover(root: str | os.PathLike[str], mask_pattern: str | None = DEFAULT_MASK_PATTERN) -> DatasetIndex:
    """Index ``root``; raise ``DataError`` naming the folder if its layout is not one we read."""
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise DataError(f"dataset folder {root} does not exist", f"Expected {CLASS_LAYOUT} or {SPLIT_LAYOUT}")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a dataset folder", f"Expected {CLASS_LAYOUT} or {SPLIT_LAYOUT}")
    dirs, loose = _children(root, mask_pattern)
    if loose:
        raise DataError(
            f"{root} has {len(loose)} image(s) directly inside it (e.g. {loose[0].name})",
            f"Put each image in a folder named after its class: {CLASS_LAYOUT}, or {SPLIT_LAYOUT}",
        )
    if not dirs:
        raise DataError(f"{root} has no class folders", f"Expected {CLASS_LAYOUT} or {SPLIT_LAYOUT}")
    split_dirs = [d for d in dirs if d.name.lower() in SPLIT_NAMES]
    if split_dirs and len(split_dirs) != len(dirs):
        others = sorted(d.name for d in dirs if d not in split_dirs)
        raise DataError(
            f"{root} mixes split folders ({', '.join(sorted(d.name for d in split_dirs))}) with other folders "
            f"({', '.join(others[:5])})",
            f"Use either {SPLIT_LAYOUT} or {CLASS_LAYOUT}, not both",
        )
    if split_dirs:
        return _discover_splits(root, split_dirs, mask_pattern)
    samples = _class_samples(root, dirs, None, mask_pattern)
    return DatasetIndex(root, sorted(d.name for d in dirs), samples, "class-folders")


def _discover_splits(root: Path, split_dirs: list[Path], mask_pattern: str | None) -> DatasetIndex:
    samples: list[Sample] = []
    classes: set[str] = set()
    for split_dir in sorted(split_dirs, key=lambda d: SPLIT_NAMES.index(d.name.lower())):
        dirs, loose = _children(split_dir, mask_pattern)
        if loose or not dirs:
            what = f"has image(s) directly inside it (e.g. {loose[0].name})" if loose else "has no class folders"
            raise DataError(f"split folder {split_dir} {what}", f"Expected {SPLIT_LAYOUT}")
        nested = [d.name for d in dirs if d.name.lower() in SPLIT_NAMES]
        if nested:
            raise DataError(f"split folder {split_dir} contains another split folder ({nested[0]})",
                            f"Expected {SPLIT_LAYOUT}")
        samples += _class_samples(split_dir, dirs, split_dir.name.lower(), mask_pattern)
        classes.update(d.name for d in dirs)
    return DatasetIndex(root, sorted(classes), samples, "split-folders")


def _class_samples(parent: Path, class_dirs: list[Path], split: str | None,
                   mask_pattern: str | None) -> list[Sample]:
    samples: list[Sample] = []
    for class_dir in sorted(class_dirs):
        files = _images_under(class_dir, mask_pattern)
        if not files:
            raise DataError(
                f"class folder {class_dir} contains no images (jpg, jpeg, png, bmp, tif, tiff, dcm)",
                f"Remove the empty folder or add its images: every folder under {parent} is read as one "
                f"class ({SPLIT_LAYOUT if split else CLASS_LAYOUT})",
            )
        samples += [Sample(f, class_dir.name, split) for f in files]
    return samples


def _children(folder: Path, mask_pattern: str | None) -> tuple[list[Path], list[Path]]:
    """Visible sub-folders and the (non-mask) image files directly in ``folder``."""
    dirs, images = list_folder(folder)
    return dirs, [p for p in images if not is_mask(p.name, mask_pattern)]


def _images_under(folder: Path, mask_pattern: str | None) -> list[Path]:
    return find_images(folder, skip=lambda name: is_mask(name, mask_pattern))


def is_mask(name: str, mask_pattern: str | None) -> bool:
    """True if ``name`` matches the mask glob (case-insensitive); never with no pattern."""
    return bool(mask_pattern) and fnmatch.fnmatch(name.lower(), mask_pattern.lower())


def parse_merges(specs: list[str] | None) -> dict[str, list[str]]:
    """``["tumor=glioma,meningioma,pituitary"]`` -> ``{"tumor": [...]}`` (the ``--merge`` option)."""
    merges: dict[str, list[str]] = {}
    for spec in specs or []:
        new, sep, olds = spec.partition("=")
        parts = [o.strip() for o in olds.split(",") if o.strip()]
        if not sep or not new.strip() or not parts:
            raise DataError(f"--merge {spec!r} is not NEW=OLD1,OLD2", "Example: --merge tumor=glioma,meningioma,pituitary")
        merges[new.strip()] = parts
    return merges


def merge_classes(index: DatasetIndex, merges: dict[str, list[str]]) -> DatasetIndex:
    """Relabel folder classes into merged ones, e.g. the binary tumor / no-tumor task of a 4-class set.

    Classes not named keep their own name; naming an unknown class is an error (a typo would
    otherwise silently drop a class from the merge).
    """
    if not merges:
        return index
    mapping: dict[str, str] = {}
    for new, olds in merges.items():
        for old in olds:
            if old not in index.classes:
                raise DataError(f"--merge names class {old!r}, which {index.root} does not have",
                                f"Its classes are: {', '.join(index.classes)}")
            if old in mapping:
                raise DataError(f"--merge puts class {old!r} into two classes ({mapping[old]}, {new})")
            mapping[old] = new
    samples = [Sample(s.path, mapping.get(s.label, s.label), s.split) for s in index.samples]
    classes = sorted({mapping.get(c, c) for c in index.classes})
    if len(classes) < 2:
        raise DataError(f"--merge leaves {index.root} with one class ({classes[0]})", "Keep at least two classes")
    return DatasetIndex(index.root, classes, samples, index.layout)
