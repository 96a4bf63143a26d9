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


# -- runtime options (issue 14): data per backend, explicit through load(), tuned by edgemri tune ------
@runtime
def test_each_backend_declares_its_tuned_configurations():
    sizes = {"litert": 2, "onnxruntime": 3, "openvino": 2}  # xnnpack on/off; 3 levels; LATENCY/THROUGHPUT
    for name, per_thread in sizes.items():
        configs = BACKENDS.get(name).configurations([1, 2])
        assert len(configs) == 2 * per_thread and {n for n, _ in configs} == {1, 2}
        assert all("precision" not in options for _, options in configs)  # never tuned, only opted into
        assert len({(n, tuple(sorted(o.items()))) for n, o in configs}) == len(configs)


@runtime
def test_xnnpack_option_and_its_environment_override(tiny_models, monkeypatch):
    path = tiny_models.tflite_int8
    plain = backend_for(path).load(path, xnnpack=False)
    assert plain.xnnpack() is False and plain.info()["options"] == {"xnnpack": False}
    assert backend_for(path).load(path, xnnpack=True).xnnpack() is True
    monkeypatch.setenv("EDGEMRI_XNNPACK", "1")  # the environment wins over the option
    assert backend_for(path).load(path, xnnpack=False).xnnpack() is True
    monkeypatch.setenv("EDGEMRI_XNNPACK", "sometimes")
    with pytest.raises(UsageError, match="EDGEMRI_XNNPACK"):
        backend_for(path).load(path)


@runtime
def test_onnxruntime_graph_optimization_option(tiny_models):
    x = normalize(tiny_models.pixels(2), tiny_models.manifest.input)
    path = tiny_models.onnx
    default = backend_for(path).load(path)
    outs = []
    for level, name in (("basic", "ORT_ENABLE_BASIC"), ("extended", "ORT_ENABLE_EXTENDED")):
        backend = backend_for(path).load(path, threads=1, graph_optimization=level)
        assert backend._session.get_session_options().graph_optimization_level.name == name
        assert backend.info()["options"] == {"graph_optimization": level}
        outs.append(backend.run(x))
    assert default.info()["options"] == {"graph_optimization": "all"}  # onnxruntime's own default
    for out in outs:
        np.testing.assert_allclose(out, default.run(x), atol=1e-6)


@runtime
@pytest.mark.parametrize("name,options,named", [
    ("litert", {"xnnpack": 1}, "True, False"),  # 1 is not a boolean
    ("litert", {"num_threads": 2}, "xnnpack"),
    ("onnxruntime", {"graph_optimization": "ALL"}, "basic, extended, all"),
    ("openvino", {"performance_hint": "FAST"}, "LATENCY, THROUGHPUT"),
    ("openvino", {"streams": 2}, "performance_hint, precision"),
])
def test_unknown_option_names_and_values_are_one_line_usage_errors(tmp_path, name, options, named):
    with pytest.raises(UsageError) as err:  # checked before the file (or the engine) is touched
        BACKENDS.get(name).load(tmp_path / "model.bin", **options)
    line = err.value.one_line()
    assert "\n" not in line and named in line and name in line


def test_openvino_performance_hint_option(tiny_models):
    path = tiny_models.openvino
    backend = backend_for(path).load(path, threads=1, performance_hint="THROUGHPUT")
    assert str(backend._compiled.get_property("PERFORMANCE_HINT")).endswith("THROUGHPUT")
    assert backend.info()["options"] == {"performance_hint": "THROUGHPUT", "precision": "f32"}
    assert backend.info()["inference_precision"] == "f32"  # tuning never changes the precision
    x = normalize(tiny_models.pixels(1), tiny_models.manifest.input)
    np.testing.assert_allclose(backend.run(x), backend_for(path).load(path).run(x), atol=1e-6)
