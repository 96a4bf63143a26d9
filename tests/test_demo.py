"""The main job end to end (``edgemri demo``) on a tiny synthetic task: one test for the whole path."""

from __future__ import annotations

import json

import pytest

from edgemri.cli import main
from edgemri.pipeline import plan


def test_plan_covers_every_stage(tmp_path):
    names = [s.name for s in plan(tmp_path, "brain4", "simple-cnn", 32, 10, 1, 1, "all", 0)]
    assert names[0] == "synthesize data" and "train" in names and "convert" in names
    assert "quantization-aware fine-tuning" in names and names.index("benchmark") > names.index("convert")
    no_qat = [s.name for s in plan(tmp_path, "brain4", "simple-cnn", 32, 10, 1, 0, "all", 0)]
    assert "quantization-aware fine-tuning" not in no_qat


def test_demo_refuses_to_overwrite(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").exists()


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--arch", "simple-cnn", "--image-size", "32", "--per-class", "12",
                 "--epochs", "2", "--qat-epochs", "1", "--targets", "tflite-int8,onnx"])
    assert code == 0
    run = out / "run"
    assert (run / "model.keras").is_file() and (run / "qat" / "saved_model").is_dir()
    assert (run / "export" / "tflite-int8" / "model.tflite").is_file()
    report = json.loads((run / "bench" / "report.json").read_text())
    assert len(report["rows"]) >= 3  # FP32 reference + two artifacts
    assert (run / "bench" / "report.html").is_file()
