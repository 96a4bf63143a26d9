"""Dataset discovery: the two layouts we read, and a clear error for every layout we don't."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgemri.data.discover import discover
from edgemri.errors import DataError


def _png(path: Path, value: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(path)
    return path


def test_class_folders_sorted_classes_masks_hidden_and_nested(tmp_path):
    _png(tmp_path / "b" / "img1.png")
    _png(tmp_path / "b" / "img1_mask.png")  # BUSI-style mask: skipped by default
    _png(tmp_path / "a" / "x.jpg.png")
    _png(tmp_path / "a" / "patient7" / "slice1.png")  # nested folders belong to their class
    _png(tmp_path / "a" / ".hidden.png")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    index = discover(tmp_path)
    assert index.layout == "class-folders"
    assert index.classes == ["a", "b"]
    names = sorted(s.path.name for s in index.samples)
    assert names == ["img1.png", "slice1.png", "x.jpg.png"]
    assert all(s.path.is_absolute() and s.split is None for s in index.samples)
    assert index.counts() == {"a": 2, "b": 1}


def test_mask_pattern_is_configurable(tmp_path):
    _png(tmp_path / "b" / "img1.png")
    _png(tmp_path / "b" / "img1_MASK.png")
    _png(tmp_path / "b" / "img1_seg.png")
    assert len(discover(tmp_path, mask_pattern=None).samples) == 3
    assert len(discover(tmp_path).samples) == 2  # case-insensitive default *_mask*
    assert len(discover(tmp_path, mask_pattern="*_seg*").samples) == 2


def test_split_folders(tmp_path):
    for split in ("train", "val", "test"):
        for cls in ("no", "yes"):
            _png(tmp_path / split / cls / f"{split}_{cls}.png")
    _png(tmp_path / "train" / "maybe" / "m.png")  # a class only some splits have
    index = discover(tmp_path)
    assert index.layout == "split-folders"
    assert index.classes == ["maybe", "no", "yes"]
    assert index.splits() == ["train", "val", "test"]
    assert {s.path.name: s.split for s in index.samples}["val_yes.png"] == "val"


@pytest.mark.parametrize("make, expect", [
    (lambda r: None, "no class folders"),
    (lambda r: _png(r / "loose.png"), "directly inside"),
    (lambda r: ((r / "empty").mkdir(), _png(r / "full" / "a.png")), "empty"),
    (lambda r: (_png(r / "train" / "a" / "1.png"), _png(r / "glioma" / "1.png")), "mixes split folders"),
    (lambda r: _png(r / "train" / "1.png"), "directly inside"),
    (lambda r: (_png(r / "a" / "x_mask.png")), "contains no images"),
])
def test_wrong_layouts_name_the_folder_and_the_expected_layout(tmp_path, make, expect):
    make(tmp_path)
    with pytest.raises(DataError) as err:
        discover(tmp_path)
    text = err.value.one_line()
    assert expect in text
    assert str(tmp_path) in text
    assert "<class>" in text


def test_missing_root_and_file_root(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        discover(tmp_path / "nope")
    f = _png(tmp_path / "a.png")
    with pytest.raises(DataError, match="is a file"):
        discover(f)


def test_merge_classes_makes_binary_task(tmp_path):
    from PIL import Image

    from edgemri.data.discover import merge_classes, parse_merges

    for cls in ("glioma", "meningioma", "notumor"):
        (tmp_path / cls).mkdir()
        Image.new("L", (8, 8)).save(tmp_path / cls / "a.png")
    index = merge_classes(discover(tmp_path), parse_merges(["tumor=glioma,meningioma"]))
    assert index.classes == ["notumor", "tumor"]
    assert index.counts() == {"notumor": 1, "tumor": 2}
    with pytest.raises(DataError, match="does not have"):
        merge_classes(discover(tmp_path), parse_merges(["tumor=gliomaa"]))
    with pytest.raises(DataError, match="NEW=OLD"):
        parse_merges(["tumor"])
    with pytest.raises(DataError, match="one class"):
        merge_classes(discover(tmp_path), parse_merges(["all=glioma,meningioma,notumor"]))


def _kaggle_like(root: Path) -> Path:
    """Two classes plus the litter a notebook leaves: hidden folders and files next to the images."""
    _png(root / "a" / "1.png", 10)
    _png(root / "a" / "patient7" / "2.png", 20)
    _png(root / "b" / "3.png", 30)
    _png(root / "a" / ".ipynb_checkpoints" / "1-checkpoint.png")
    _png(root / ".ipynb_checkpoints" / "x.png")
    _png(root / "b" / "._3.png")  # macOS resource fork
    (root / "b" / "notes.txt").write_text("not an image")
    return root


def test_one_image_discovery_for_data_and_predict(tmp_path):
    """predict DIR, audit, split, the loader and training all see the same files (find_images)."""
    from edgemri.runtime.cli import expand_images
    from edgemri.runtime.images import find_images

    root = _kaggle_like(tmp_path / "set")
    visible = [root / "a" / "1.png", root / "a" / "patient7" / "2.png", root / "b" / "3.png"]
    assert find_images(root) == visible
    assert expand_images([root]) == visible
    assert sorted(s.path for s in discover(root).samples) == [p.resolve() for p in visible]
    assert find_images(root, skip=lambda name: name == "3.png") == visible[:2]
    hidden = root / "a" / ".ipynb_checkpoints" / "1-checkpoint.png"
    assert expand_images([hidden]) == [hidden]  # a file named on the command line is used as given


def test_predict_dir_skips_hidden_folders(tmp_path, capsys, tiny_models):
    import json

    from edgemri.cli import main

    models = tiny_models
    root = _kaggle_like(tmp_path / "set")
    assert main(["predict", str(models.onnx), str(root), "--json"]) == 0
    paths = [json.loads(line)["path"] for line in capsys.readouterr().out.strip().splitlines()]
    assert paths == [str(root / "a" / "1.png"), str(root / "a" / "patient7" / "2.png"), str(root / "b" / "3.png")]
    assert not any(".ipynb_checkpoints" in p for p in paths)


def test_a_folder_of_only_hidden_images_has_none(tmp_path, capsys):
    from edgemri.cli import main

    _png(tmp_path / "imgs" / ".ipynb_checkpoints" / "x.png")
    assert main(["predict", str(tmp_path / "model.onnx"), str(tmp_path / "imgs")]) == 2
    assert "has no images" in capsys.readouterr().err
