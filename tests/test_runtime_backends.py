"""The three backends: same answers as the Keras model, clear errors for missing packages/bad files.

``runtime``-marked tests use only the committed tiny models (tests/data) and the runtime install;
the Keras and OpenVINO comparisons need the full install.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from edgemri.errors import MissingExtraError, ModelFileError, UsageError
from edgemri.runtime.backends import BACKENDS, backend_for
from edgemri.runtime.backends import litert as litert_mod
from edgemri.runtime.preprocess import normalize

runtime = pytest.mark.runtime


@runtime
def test_registry_and_suffix_choice(tmp_path):
    assert BACKENDS.names() == ["litert", "onnxruntime", "openvino"]
    assert backend_for("m.tflite").name == "litert"
    assert backend_for("m.ONNX").name == "onnxruntime"
    assert backend_for("m.xml").name == "openvino"
    assert backend_for("m.tflite", "openvino").name == "openvino"
    with pytest.raises(UsageError) as err:
        backend_for("m.tflite", "litrt")
    assert 'Did you mean "litert"' in err.value.one_line()  # the registry's hint, with every choice
    with pytest.raises(ModelFileError, match=r"\.pt"):
        backend_for("m.pt")


@runtime
def test_float_backends_agree_with_each_other(tiny_models):
    """TF-free numeric check: LiteRT and onnxruntime run the same weights to the same probabilities."""
    x = normalize(tiny_models.pixels(4), tiny_models.manifest.input)
    tfl, ort = (backend_for(p).load(p, threads=1) for p in (tiny_models.tflite_fp32, tiny_models.onnx))
    out = tfl.run(x)
    np.testing.assert_allclose(out, ort.run(x), atol=1e-5)
    assert np.abs(out - out.mean(axis=0)).max() > 1e-3  # different images, different answers: the check has teeth


@pytest.mark.parametrize("which", ["tflite_fp32", "onnx", "openvino"])
def test_float_backends_match_keras(tiny_models, which):
    path = getattr(tiny_models, which)
    backend = backend_for(path).load(path, threads=1)
    pixels = tiny_models.pixels(4)
    x = normalize(pixels, tiny_models.manifest.input)
    ref = tiny_models.keras_probs(pixels)
    out = np.concatenate([backend.run(x[i:i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(out, ref, atol=1e-5)
    info = backend.info()
    assert info["backend"] == backend.name and info["threads"] == 1
    assert info["versions"]["numpy"] == np.__version__
    assert backend.input.shape[1:] == (16, 16, 3) and backend.output.shape[-1] == 3


@runtime
def test_litert_reports_engine_quantization_and_xnnpack(tiny_models):
    backend = backend_for(tiny_models.tflite_int8).load(tiny_models.tflite_int8, threads=2)
    assert backend.input.dtype == "int8" and backend.output.dtype == "int8"
    assert backend.input.quantization is not None and backend.input.quantization.scale > 0
    info = backend.info()
    assert info["engine"] == "ai_edge_litert.interpreter"
    assert "ai-edge-litert" in info["versions"]
    assert info["xnnpack"] is True  # AUTO op resolver applies XNNPACK on CPU
    assert backend.input.fixed_batch is None  # converter leaves the batch dynamic
    assert backend.run(np.zeros((3, 16, 16, 3), np.int8)).shape == (3, 3)


@runtime
def test_xnnpack_can_be_switched_off_with_same_outputs(tiny_models, monkeypatch):
    x = np.random.default_rng(0).integers(-128, 127, (2, 16, 16, 3), dtype=np.int8)
    with_delegate = backend_for(tiny_models.tflite_int8).load(tiny_models.tflite_int8)
    monkeypatch.setenv("EDGEMRI_XNNPACK", "0")
    plain = backend_for(tiny_models.tflite_int8).load(tiny_models.tflite_int8)
    assert with_delegate.xnnpack() is True and plain.xnnpack() is False
    assert np.abs(plain.run(x).astype(int) - with_delegate.run(x).astype(int)).max() <= 1  # same model, +-1 LSB


@runtime
def test_litert_falls_back_and_names_the_extra(tiny_models, monkeypatch):
    monkeypatch.setattr(litert_mod, "INTERPRETERS", (("no_such_mod.interpreter", "x"),
                                                     ("ai_edge_litert.interpreter", "ai-edge-litert")))
    assert backend_for(tiny_models.tflite_fp32).load(tiny_models.tflite_fp32).engine() == "ai_edge_litert.interpreter"
    monkeypatch.setattr(litert_mod, "INTERPRETERS", (("no_such_mod.interpreter", "x"),))
    with pytest.raises(MissingExtraError) as err:
        backend_for(tiny_models.tflite_fp32).load(tiny_models.tflite_fp32)
    assert 'pip install "edgemri[litert]"' in err.value.one_line()


@pytest.mark.parametrize("module,which,extra", [pytest.param("onnxruntime", "onnx", "onnx", marks=runtime),
                                                ("openvino", "openvino", "openvino")])
def test_missing_engine_names_the_extra(tiny_models, monkeypatch, module, which, extra):
    path = getattr(tiny_models, which)  # first: the OpenVINO IR is made with openvino
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MissingExtraError) as err:
        backend_for(path).load(path)
    assert f'pip install "edgemri[{extra}]"' in err.value.one_line()


@pytest.mark.parametrize("which", [pytest.param("tflite_fp32", marks=runtime), pytest.param("onnx", marks=runtime),
                                   "openvino"])
def test_truncated_model_is_a_model_file_error(tiny_models, tmp_path, which):
    src = getattr(tiny_models, which)
    dest = tmp_path / src.name
    dest.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    if src.suffix == ".xml":
        (tmp_path / "model.bin").write_bytes(src.with_suffix(".bin").read_bytes())
    with pytest.raises(ModelFileError) as err:
        backend_for(dest).load(dest)
    assert str(dest) in err.value.message and "\n" not in err.value.one_line()


@runtime
def test_missing_and_empty_files(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        backend_for("nope.tflite").load(tmp_path / "nope.tflite")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        backend_for(empty).load(empty)


def test_openvino_xml_without_its_bin(tmp_path, tiny_models):
    xml = tmp_path / "model.xml"
    xml.write_bytes(tiny_models.openvino.read_bytes())
    with pytest.raises(ModelFileError, match="model.bin"):
        backend_for(xml).load(xml)
