"""Errors, lazy extras, the registry, atomic writes and the run directory."""

from __future__ import annotations

import pytest

from edgemri.atomic import atomic_dir, atomic_path, write_json
from edgemri.errors import MissingExtraError, RunError, UsageError
from edgemri.extras import available, require
from edgemri.registry import Registry
from edgemri.rundir import RunDir


def test_missing_extra_names_the_pip_command():
    with pytest.raises(MissingExtraError) as info:
        require("edgemri_no_such_module", "litert", "running .tflite models")
    assert 'pip install "edgemri[litert]"' in info.value.one_line()
    assert "running .tflite models" in info.value.one_line()
    assert available("numpy") and not available("edgemri_no_such_module")


def test_registry_did_you_mean():
    reg: Registry[int] = Registry("target")
    reg.register("tflite-int8")(1)
    reg.register("onnx")(2)
    assert reg.get("onnx") == 2 and reg.names() == ["tflite-int8", "onnx"]  # table order
    with pytest.raises(UsageError, match='tflite-int8'):
        reg.get("tflite-in8")
    with pytest.raises(ValueError, match="twice"):
        reg.register("onnx")(3)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    dest = tmp_path / "out" / "report.json"
    write_json(dest, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert dest.read_text().strip().startswith("{") and "half" not in dest.read_text()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["report.json"]


def test_atomic_files_get_umask_permissions_not_0600(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        dest = write_json(tmp_path / "m.json", {})
    finally:
        os.umask(mask)
    assert dest.stat().st_mode & 0o777 == 0o644


def test_atomic_dir_swaps_whole_directory(tmp_path):
    dest = tmp_path / "bundle"
    with atomic_dir(dest) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(ValueError), atomic_dir(dest) as tmp:
        (tmp / "b").write_text("2")
        raise ValueError
    assert sorted(p.name for p in dest.iterdir()) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_rundir_refuses_silent_overwrite(tmp_path):
    run = RunDir.create(tmp_path / "r")
    run.config_path.write_text("{}")
    with pytest.raises(RunError, match="already exists"):
        RunDir.create(tmp_path / "r")
    assert RunDir.create(tmp_path / "r", overwrite=True).root == tmp_path / "r"
    with pytest.raises(RunError, match="no model.keras"):
        RunDir.open(tmp_path / "r")
    with pytest.raises(RunError, match="not found"):
        RunDir.open(tmp_path / "nope")
