"""Errors, lazy extras, the registry, atomic writes and the run directory."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class _Entry:
    name: str
    value: int


def test_registry_did_you_mean():
    reg: Registry[_Entry] = Registry("target")
    reg.add(_Entry("tflite-int8", 1))
    reg.add(_Entry("onnx", 2))
    assert reg.get("onnx").value == 2 and reg.names() == ["tflite-int8", "onnx"]  # table order
    with pytest.raises(UsageError) as info:
        reg.get("tflite-in8")
    line = info.value.one_line()
    assert 'Did you mean "tflite-int8"? Choose one of: tflite-int8, onnx' in line and "?." not in line
    with pytest.raises(ValueError, match="twice"):
        reg.add(_Entry("onnx", 3))


def test_registry_loads_its_modules_on_first_read():
    import sys

    reg: Registry[_Entry] = Registry("thing", modules=("edgemri_test_no_such_module",))
    assert "edgemri_test_no_such_module" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        reg.names()


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


def test_user_errors_keep_the_library_error_as_their_cause(tmp_path):
    """--debug shows the library's own error under the one-line message (raise ... from exc)."""
    from edgemri.errors import ImageDecodeError, ManifestError
    from edgemri.runtime.images import load_image
    from edgemri.runtime.manifest import Manifest

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ImageDecodeError) as info:
        load_image(broken)
    assert info.value.__cause__ is not None and str(broken) in info.value.one_line()
    with pytest.raises(ManifestError) as info:
        Manifest.from_json("{not json", "m.json")
    assert info.value.__cause__ is not None and "m.json" in info.value.one_line()


def test_no_source_file_discards_an_exception_cause():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    offenders = [str(p.relative_to(root)) for folder in ("edgemri", "runtime", "train", "convert")
                 for p in (root / folder).rglob("*.py") if "from None" in p.read_text()]
    assert offenders == []
