"""`edgemri predict`: table and JSON output, directory runs with bad files, one-line errors.

All on the committed tiny models with the runtime install only (``pytest -m runtime``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from edgemri.cli import main
from edgemri.runtime.predictor import Predictor

pytestmark = pytest.mark.runtime


@pytest.fixture
def image_dir(tmp_path):
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (24 + i, 20), dtype=np.uint8)).save(root / "sub" / f"{i}.png")
    (root / "notes.txt").write_text("not an image, not listed")
    return root


def test_json_lines_match_the_predictor(tiny_models, image_dir, capsys):
    rc = main(["predict", str(tiny_models.tflite_int8), str(image_dir), "--json", "--top", "2", "--threads", "1"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and len(out) == 3
    rows = [json.loads(line) for line in out]
    assert [r["path"] for r in rows] == [str(image_dir / "sub" / f"{i}.png") for i in range(3)]
    pred = Predictor.load(tiny_models.tflite_int8).predict_one(image_dir / "sub" / "0.png")
    assert rows[0]["label"] == pred.label and len(rows[0]["top"]) == 2
    assert rows[0]["probabilities"][pred.label] == pytest.approx(pred.confidence, abs=1e-5)
    assert set(rows[0]["timings_ms"]) == {"decode", "preprocess", "inference", "postprocess"}


def test_table_output(tiny_models, image_dir, capsys):
    rc = main(["predict", str(tiny_models.onnx), str(image_dir / "sub" / "1.png"), "--top", "3", "--warmup", "2"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "1.png" in out and "onnxruntime" in out
    label = Predictor.load(tiny_models.onnx).predict_one(image_dir / "sub" / "1.png").label
    assert label in out and all(c in out for c in tiny_models.manifest.classes)


def test_bad_image_in_directory_is_reported_and_rest_predicted(tiny_models, image_dir, capsys):
    (image_dir / "broken.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    rc = main(["predict", str(tiny_models.tflite_fp32), str(image_dir), "--json"])
    cap = capsys.readouterr()
    rows = [json.loads(line) for line in cap.out.strip().splitlines()]
    assert rc == 2
    assert sum("error" in r for r in rows) == 1 and sum("label" in r for r in rows) == 3
    errors = [line for line in cap.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.jpg" in errors[0]
    rc = main(["predict", str(tiny_models.tflite_fp32), str(image_dir), "--json", "--skip-bad"])
    assert rc == 0 and "skipped:" in capsys.readouterr().err


def test_single_bad_image_is_a_one_line_error(tiny_models, tmp_path, capsys):
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"nope")
    rc = main(["predict", str(tiny_models.tflite_fp32), str(bad)])
    err = capsys.readouterr().err
    assert rc == 2 and "scan.png" in err


def test_truncated_tflite_is_one_line_exit_2(tiny_models, image_dir, tmp_path, capsys):
    cut = tmp_path / "model.tflite"
    cut.write_bytes(tiny_models.tflite_fp32.read_bytes()[:900])
    (tmp_path / "model.tflite.json").write_bytes((tiny_models.tflite_fp32.parent / "model.tflite.json").read_bytes())
    rc = main(["predict", str(cut), str(image_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("error:") and str(cut) in err[0] and "export it again" in err[0]


@pytest.mark.parametrize("args,match", [
    (["missing.tflite"], "not found"),
    (["__MODEL__", "--backend", "tflite"], "unknown backend"),
])
def test_usage_errors(tiny_models, image_dir, capsys, args, match):
    args = [str(tiny_models.tflite_fp32) if a == "__MODEL__" else a for a in args]
    rc = main(["predict", args[0], str(image_dir), *args[1:]])
    assert rc == 2 and match in capsys.readouterr().err


def test_empty_directory_and_missing_image(tiny_models, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(tiny_models.tflite_fp32), str(tmp_path / "empty")]) == 2
    assert "has no images" in capsys.readouterr().err
    assert main(["predict", str(tiny_models.tflite_fp32), str(tmp_path / "gone.png")]) == 2
    assert "gone.png not found" in capsys.readouterr().err
