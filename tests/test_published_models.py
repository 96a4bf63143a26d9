"""The models committed under benchmarks/results/models/ are what the README's table describes:
complete, loadable by the lightweight runtime, and consistent with their own bench reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgemri.runtime.manifest import Manifest
from edgemri.runtime.predictor import Predictor

ROOT = Path(__file__).resolve().parents[1]
RUNS = sorted(p for p in (ROOT / "benchmarks" / "results" / "models").glob("*") if p.is_dir())


def _rows(run: Path) -> dict[str, dict]:
    report = json.loads((run / "bench" / "report.json").read_text())
    return {r["name"]: r for r in report["rows"] if r["threads"] == 1}


def _dataset_root(split_root: str) -> Path | None:
    """The split's dataset folder: ../shared/datasets/<name>/... beside this clone, else the recorded path."""
    parts = Path(split_root).parts
    if "datasets" in parts:
        local = ROOT.parent / "shared" / Path(*parts[parts.index("datasets"):])
        if local.is_dir():
            return local
    return Path(split_root) if Path(split_root).is_dir() else None


def test_there_are_published_runs():
    assert {p.name.split("-")[0] for p in RUNS} >= {"brain4", "brain2", "busi3"}


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_published_run_is_complete_and_matches_its_report(run: Path):
    report = json.loads((run / "bench" / "report.json").read_text())
    assert report["eval"]["source"] == "split:test" and report["git_commit"]
    rows = _rows(run)
    manifest = Manifest.load(run / "manifest.json")
    assert list(manifest.classes) == report["eval"]["classes"]
    published = {p.parent.name: p for p in (run / "export").glob("*/model.tflite")}
    assert "tflite-int8" in published
    for target, model in published.items():
        assert model.stat().st_size == rows[target]["file_size_bytes"]  # the report measured this file
        assert Predictor.load(model).classes == manifest.classes


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_int8_reproduces_its_reported_test_accuracy(run: Path):
    split = json.loads((run / "split.json").read_text())
    root = _dataset_root(split["root"])
    if root is None:
        pytest.skip(f"dataset {split['root']} not present")
    test = [f for f in split["files"] if f["split"] == "test"]
    sample = test[:: max(1, len(test) // 120)]  # <= ~120 images, spread over the split
    predictor = Predictor.load(run / "export" / "tflite-int8" / "model.tflite")
    preds = predictor.predict([root / f["path"] for f in sample])
    acc = float(np.mean([p.label == f["class"] for p, f in zip(preds, sample, strict=True)]))
    reported = _rows(run)["tflite-int8"]["metrics"]["accuracy"]
    # a subsample of the same images: within 4 binomial standard errors of the full-split figure
    assert abs(acc - reported) <= 4 * np.sqrt(reported * (1 - reported) / len(sample)) + 1e-9


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_published_keras_model_holds_weights_only(run: Path):
    """What a user downloads is the model, not training state (Adam's moments would triple it)."""
    import io
    import zipfile

    h5py = pytest.importorskip("h5py")
    with zipfile.ZipFile(run / "model.keras") as archive:
        assert {"config.json", "model.weights.h5"} <= set(archive.namelist())
        with h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as weights:
            assert "optimizer" not in weights
