"""Manifests embedded in .tflite (appended zip), .onnx (metadata_props) and .xml (rt_info)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from _runtime_models import base_manifest, build_tiny_models
from edgemri.errors import ManifestError, ModelFileError
from edgemri.runtime.embed import embed_tflite, read_embedded


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_tiny_models(str(tmp_path_factory.getbasetemp() / "runtime-models"))


def _run_litert(data: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=data)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def test_embedded_tflite_still_runs_and_reads_back(models, tmp_path):
    plain = models.tflite_fp32.read_bytes()
    manifest = base_manifest().replace(arch="embedded-arch")
    data = embed_tflite(plain, manifest)
    assert data.startswith(plain) and len(data) > len(plain)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(_run_litert(data, x), _run_litert(plain, x))
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    assert read_embedded(path) == manifest


def test_re_embedding_replaces_manifest_and_keeps_other_associated_files(models, tmp_path):
    plain = models.tflite_fp32.read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("labels.txt", "a\nb\nc\n")
    with_labels = plain + buf.getvalue()
    once = embed_tflite(with_labels, base_manifest())
    twice = embed_tflite(once, base_manifest().replace(arch="second"))
    assert twice.startswith(plain)
    with zipfile.ZipFile(io.BytesIO(twice)) as zf:
        assert sorted(zf.namelist()) == ["labels.txt", "manifest.json"]
        assert zf.read("labels.txt") == b"a\nb\nc\n"
    path = tmp_path / "m.tflite"
    path.write_bytes(twice)
    assert read_embedded(path).arch == "second"


def test_embed_refuses_non_tflite_bytes():
    with pytest.raises(ModelFileError, match="TFL3"):
        embed_tflite(b"\x00" * 64, base_manifest())


def test_plain_models_have_no_embedded_manifest(models):
    assert read_embedded(models.tflite_fp32) is None
    assert read_embedded(models.onnx) is None
    assert read_embedded(models.openvino) is None


def test_onnx_and_openvino_embedded_manifests_read_without_their_packages(models):
    assert read_embedded(models.onnx_embedded) == base_manifest().replace(format="onnx")
    assert read_embedded(models.openvino_embedded) == base_manifest().replace(format="openvino")


def test_invalid_embedded_manifest_is_a_manifest_error(models, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.json", '{"schema": "something-else"}')
    path = tmp_path / "bad.tflite"
    path.write_bytes(models.tflite_fp32.read_bytes() + buf.getvalue())
    with pytest.raises(ManifestError, match="bad.tflite"):
        read_embedded(path)


def test_truncated_onnx_and_unknown_suffix_are_model_file_errors(models, tmp_path):
    data = models.onnx_embedded.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) - 40])
    with pytest.raises(ModelFileError, match="cut.onnx"):
        read_embedded(cut)
    odd = tmp_path / "model.pt"
    odd.write_bytes(b"x")
    with pytest.raises(ModelFileError, match="unknown model file type"):
        read_embedded(odd)
