"""Manifests embedded in .tflite (appended zip), .onnx (metadata_props) and .xml (rt_info).

``runtime``-marked tests read the committed tiny models (tests/data) with the runtime install only.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from edgemri.errors import ManifestError, ModelFileError
from edgemri.runtime.embed import embed_tflite, read_embedded
from edgemri.runtime.manifest import Manifest, sidecar_path

runtime = pytest.mark.runtime


def _run_litert(data: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=data)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


@runtime
def test_embedded_tflite_still_runs_and_reads_back(tiny_models, tmp_path):
    plain = tiny_models.plain("tflite_fp32").read_bytes()
    manifest = tiny_models.manifest.replace(arch="embedded-arch")
    data = embed_tflite(plain, manifest)
    assert data.startswith(plain) and len(data) > len(plain)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(_run_litert(data, x), _run_litert(plain, x))
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    assert read_embedded(path) == manifest


@runtime
def test_re_embedding_replaces_manifest_and_keeps_other_associated_files(tiny_models, tmp_path):
    plain = tiny_models.plain("tflite_fp32").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("labels.txt", "a\nb\nc\n")
    with_labels = plain + buf.getvalue()
    once = embed_tflite(with_labels, tiny_models.manifest)
    twice = embed_tflite(once, tiny_models.manifest.replace(arch="second"))
    assert twice.startswith(plain)
    with zipfile.ZipFile(io.BytesIO(twice)) as zf:
        assert sorted(zf.namelist()) == ["labels.txt", "manifest.json"]
        assert zf.read("labels.txt") == b"a\nb\nc\n"
    path = tmp_path / "m.tflite"
    path.write_bytes(twice)
    assert read_embedded(path).arch == "second"


@runtime
def test_embed_refuses_non_tflite_bytes(tiny_models):
    with pytest.raises(ModelFileError, match="TFL3"):
        embed_tflite(b"\x00" * 64, tiny_models.manifest)


@pytest.mark.parametrize("which", [pytest.param("tflite_fp32", marks=runtime), "onnx", "openvino"])
def test_plain_models_have_no_embedded_manifest(tiny_models, which):
    assert read_embedded(tiny_models.plain(which)) is None


@pytest.mark.parametrize("which", [pytest.param("tflite_fp32", marks=runtime), pytest.param("tflite_int8", marks=runtime),
                                   pytest.param("onnx", marks=runtime), "openvino"])
def test_artifacts_carry_their_sidecar_manifest_inside(tiny_models, which):
    """What convert writes: the embedded manifest is the sidecar's, read without the engine's package."""
    path = getattr(tiny_models, which)
    embedded = read_embedded(path)
    assert embedded == Manifest.load(sidecar_path(path))
    assert embedded.classes == tiny_models.manifest.classes and embedded.input.height == 16


@pytest.mark.parametrize("which,fmt", [pytest.param("onnx_embedded", "onnx", marks=runtime),
                                       ("openvino_embedded", "openvino")])
def test_onnx_and_openvino_embedded_manifests_read_without_their_packages(tiny_models, which, fmt):
    path, artifact = getattr(tiny_models, which), getattr(tiny_models, fmt)  # a copy without the sidecar
    assert not sidecar_path(path).exists()
    manifest = read_embedded(path)
    assert manifest == Manifest.load(sidecar_path(artifact)) and manifest.format == fmt


@runtime
def test_invalid_embedded_manifest_is_a_manifest_error(tiny_models, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.json", '{"schema": "something-else"}')
    path = tmp_path / "bad.tflite"
    path.write_bytes(tiny_models.plain("tflite_fp32").read_bytes() + buf.getvalue())
    with pytest.raises(ManifestError, match="bad.tflite"):
        read_embedded(path)


@runtime
def test_truncated_onnx_and_unknown_suffix_are_model_file_errors(tiny_models, tmp_path):
    data = tiny_models.onnx_embedded.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) - 40])
    with pytest.raises(ModelFileError, match="cut.onnx"):
        read_embedded(cut)
    odd = tmp_path / "model.pt"
    odd.write_bytes(b"x")
    with pytest.raises(ModelFileError, match="unknown model file type"):
        read_embedded(odd)
