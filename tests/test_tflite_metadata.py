"""Standard model metadata: TFLite Model Metadata (what MediaPipe Tasks and TFLite Support read) and
the ONNX ModelProto conventions, on the committed tiny models. The real MediaPipe client is
tests/test_mediapipe.py; this file needs the ``convert`` extra only (flatbuffers, onnx).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from _runtime_models import strip_tflite
from edgemri.cli import main
from edgemri.convert.inspect import inspect_model, tflite_metadata
from edgemri.convert.tflite import LABELS_FILE, MANIFEST_FILE, normalization, with_metadata
from edgemri.runtime.embed import embed_tflite, read_embedded
from edgemri.runtime.manifest import Manifest, sidecar_path
from edgemri.runtime.predictor import Predictor

pytest.importorskip("flatbuffers", reason="TFLite metadata needs flatbuffers (edgemri[convert])")


def _with_metadata(src: Path, dest: Path) -> Path:
    """What convert writes for ``src``'s model: metadata + labels, then the manifest zip, plus the sidecar."""
    manifest = Manifest.load(sidecar_path(src))
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(embed_tflite(with_metadata(strip_tflite(src.read_bytes()), manifest), manifest))
    manifest.save(sidecar_path(dest))
    return dest


@pytest.fixture(scope="module")
def fp32_meta(tiny_models, tmp_path_factory) -> Path:
    return _with_metadata(tiny_models.tflite_fp32, tmp_path_factory.mktemp("meta") / "fp32" / "model.tflite")


def test_metadata_describes_the_manifest(fp32_meta: Path) -> None:
    manifest = Manifest.load(sidecar_path(fp32_meta))
    meta = tflite_metadata(fp32_meta.read_bytes())
    assert meta is not None and meta["min_parser_version"] == "1.0.0"
    assert meta["author"] and meta["license"] and manifest.task in meta["name"]
    image = meta["inputs"][0]
    assert image["image"] == "RGB"
    mean, std = image["normalization"]["mean"][0], image["normalization"]["std"][0]
    assert (mean, std) == pytest.approx(normalization(manifest), rel=1e-6)
    # (p - mean) / std is the manifest's p * scale + offset for every pixel value
    p = np.arange(256, dtype=np.float64)
    np.testing.assert_allclose((p - mean) / std, p * manifest.input.scale + manifest.input.offset, atol=1e-6)
    assert meta["outputs"][0]["labels"] == [LABELS_FILE]
    assert set(meta["associated_files"]) == {LABELS_FILE, MANIFEST_FILE} and meta["missing_files"] == []
    with zipfile.ZipFile(fp32_meta) as zf:
        assert zf.read(LABELS_FILE).decode().splitlines() == list(manifest.classes)


def test_metadata_changes_nothing_the_runtime_sees(tiny_models, fp32_meta: Path) -> None:
    pixels = tiny_models.pixels(4)
    before = Predictor.load(tiny_models.tflite_fp32).predict_pixels(pixels)
    np.testing.assert_array_equal(Predictor.load(fp32_meta).predict_pixels(pixels), before)
    embedded = read_embedded(fp32_meta)
    assert embedded is not None and embedded.classes == tiny_models.manifest.classes


def test_rewriting_replaces_the_metadata_and_keeps_the_labels(tiny_models, fp32_meta: Path, tmp_path: Path) -> None:
    manifest = Manifest.load(sidecar_path(fp32_meta)).replace(task="renamed")
    again = with_metadata(strip_tflite(fp32_meta.read_bytes()), manifest)
    meta = tflite_metadata(again)
    assert meta is not None and "renamed" in meta["name"]
    assert abs(len(strip_tflite(again)) - len(strip_tflite(fp32_meta.read_bytes()))) < 64  # one buffer, not two
    out = tmp_path / "model.tflite"
    out.write_bytes(embed_tflite(again, manifest.replace(arch="x")))  # a later manifest update keeps labels.txt
    assert tflite_metadata(out.read_bytes())["missing_files"] == []


def test_inspect_reports_metadata_and_mediapipe_readiness(tiny_models, fp32_meta: Path, tmp_path: Path) -> None:
    assert inspect_model(fp32_meta)["mediapipe"] == []
    bare = inspect_model(tiny_models.tflite_fp32)  # committed by an older edgemri: no metadata
    assert bare["metadata"] is None
    assert any("no TFLite Model Metadata" in p for p in bare["mediapipe"])
    int8 = inspect_model(_with_metadata(tiny_models.tflite_int8, tmp_path / "int8" / "model.tflite"))
    assert int8["metadata"] is not None
    assert any("--io uint8" in p and "input is int8" in p for p in int8["mediapipe"])


def test_inspect_cli_prints_the_metadata(fp32_meta: Path, tiny_models, capsys) -> None:
    assert main(["inspect", str(fp32_meta)]) == 0
    out = capsys.readouterr().out
    assert "metadata: 'edgemri" in out and "labels.txt" in out and "MediaPipe: ok" in out
    assert main(["inspect", str(tiny_models.tflite_int8)]) == 0
    out = capsys.readouterr().out
    assert "metadata: none" in out and "! MediaPipe" in out


def test_a_model_without_metadata_still_predicts(tiny_models) -> None:
    plain = tiny_models.plain("tflite_fp32")  # no metadata, no embedded manifest: the sidecar is enough
    assert tflite_metadata(plain.read_bytes()) is None
    assert Predictor.load(plain).predict_pixels(tiny_models.pixels(2)).shape == (2, 3)


def test_bad_io_choice_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["convert", str(tmp_path), "--target", "tflite-int8", "--io", "int4"]) != 0
    err = capsys.readouterr().err
    assert "--io" in err and "uint8" in err and "Traceback" not in err


def test_onnx_conventions(tiny_models, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from edgemri.convert.onnx_export import apply_conventions

    model = onnx.load(str(tiny_models.onnx))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "unk__655"  # what tf2onnx writes
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "unk__655"
    apply_conventions(model, tiny_models.manifest)
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
    assert meta.producer_name == "edgemri" and "not a medical device" in meta.description.lower()
    assert json.loads(meta.custom_metadata_map["labels"]) == list(tiny_models.manifest.classes)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch" and session.get_outputs()[0].shape[0] == "batch"
