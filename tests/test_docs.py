"""The registry tables in docs/ match their registries (regenerate: python -m edgemri.doctables --write)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgemri import doctables
from edgemri.doctables import TABLES, DocTable

DOCS = doctables.REPO_ROOT / "docs"


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.key)
def test_doc_table_matches_its_registry(table: DocTable) -> None:
    text = (doctables.REPO_ROOT / table.doc).read_text(encoding="utf-8")
    assert doctables.current(table, text) == table.render(), (
        f"{table.doc}: the {table.key} table is stale; run python -m edgemri.doctables --write")


def test_models_table_has_every_architecture_and_its_options() -> None:
    from edgemri.train.models import MODELS

    rendered = doctables.models_table()
    for entry in MODELS.entries():
        row = next(line for line in rendered.splitlines() if line.startswith(f"| `{entry.name}` |"))
        assert entry.description in row and row.endswith(f"| {entry.min_size} |")
        for key in entry.defaults:
            assert f"`{key}` " in row, (entry.name, key)


def test_targets_table_has_every_target_and_its_gates() -> None:
    from edgemri.convert.targets import TARGETS

    rows = doctables.targets_table().splitlines()
    for target in TARGETS.entries():
        row = next(line for line in rows if line.startswith(f"| `{target.name}` |")).split(" | ")
        assert row[2] == ("yes" if target.quantized else "no")
        assert float(row[3]) == target.min_agreement
        assert row[4].rstrip(" |") == ("-" if target.max_prob_diff is None else f"{target.max_prob_diff:g}")


def test_write_replaces_only_the_marked_block_and_check_sees_staleness(tmp_path: Path) -> None:
    for table in TABLES:
        doc = tmp_path / table.doc
        doc.parent.mkdir(parents=True, exist_ok=True)
        begin, end = table.markers()
        doc.write_text(f"# intro\n\n{begin}\n| stale | table |\n{end}\n\nafter\n", encoding="utf-8")
    assert sorted(doctables.stale(tmp_path)) == sorted(f"{t.doc}: {t.key}" for t in TABLES)
    assert doctables.main(["--root", str(tmp_path)]) == 1
    assert sorted(doctables.write(tmp_path)) == sorted(t.doc for t in TABLES)
    assert doctables.stale(tmp_path) == [] and doctables.write(tmp_path) == []  # idempotent
    text = (tmp_path / TABLES[0].doc).read_text(encoding="utf-8")
    assert text.startswith("# intro\n\n") and text.endswith(f"{TABLES[0].markers()[1]}\n\nafter\n")
    assert "stale" not in text


def test_missing_markers_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="registry:models"):
        doctables.current(TABLES[0], "no markers here\n")


def test_convert_doc_states_the_calibration_default() -> None:
    from edgemri.convert.calibration import DEFAULT_CALIB_IMAGES, MIN_RECOMMENDED

    text = (DOCS / "convert.md").read_text(encoding="utf-8")
    assert f"(`--calib N`, default {DEFAULT_CALIB_IMAGES})" in text
    assert f"[--calib {DEFAULT_CALIB_IMAGES}]" in text
    assert f"fewer than {MIN_RECOMMENDED} images gives a warning" in text


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.key)
def test_rendering_a_table_imports_no_framework_nor_numpy(table: DocTable) -> None:
    """The registries are read by --help and in a bare checkout: their entries load nothing heavy."""
    import json
    import subprocess
    import sys

    code = (f"import json, sys; from edgemri import doctables; doctables.{table.render.__name__}(); "
            "print(json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    modules = json.loads(proc.stdout.splitlines()[-1])
    heavy = ("numpy", "tensorflow", "keras", "tf_keras", "onnx", "openvino", "jax", "torch")
    assert [m for m in modules if m.split(".")[0] in heavy] == []
