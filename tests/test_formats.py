"""The model format table (edgemri.runtime.formats): every consumer derives from one entry per format.

The table tests need nothing installed; the round trips write real (tiny, committed) models with
each format's own writer and read them back through the runtime.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib

from edgemri.bench.inputs import artifact_names, find_artifact
from edgemri.convert.targets import TARGETS
from edgemri.errors import MissingExtraError, ModelFileError, UsageError
from edgemri.runtime.backends import BACKENDS, backend_for
from edgemri.runtime.backends import litert as litert_mod
from edgemri.runtime.embed import read_embedded
from edgemri.runtime.formats import FORMATS, Format, artifact_size, format_for_path
from edgemri.runtime.preprocess import normalize

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
RUNNABLE = [f for f in FORMATS.entries() if f.backend is not None]
runtime = pytest.mark.runtime


@runtime
def test_the_table_holds_the_three_deployment_formats_and_the_keras_source() -> None:
    assert FORMATS.names() == ["tflite", "onnx", "openvino", "keras"]
    assert [f.name for f in RUNNABLE] == ["tflite", "onnx", "openvino"]  # keras is what convert reads


@runtime
@pytest.mark.parametrize("fmt", FORMATS.entries(), ids=FORMATS.names())
def test_every_format_has_a_suffix_an_extra_and_a_registered_backend(fmt: Format) -> None:
    assert fmt.suffixes and all(s.startswith(".") and s == s.lower() for s in fmt.suffixes)
    assert fmt.filename == f"model{fmt.suffix}"
    assert fmt.extra in EXTRAS, f"{fmt.name}: extra {fmt.extra!r} is not in pyproject.toml"
    if fmt.backend is None:  # a source format: nothing in the runtime reads it
        assert (fmt.read_manifest, fmt.write, fmt.inspect) == (None, None, None)
        return
    assert fmt.backend in BACKENDS
    assert BACKENDS.get(fmt.backend).file_format() is fmt
    assert callable(fmt.read_manifest) and callable(fmt.write) and callable(fmt.inspect)


@runtime
def test_every_backend_runs_exactly_one_format() -> None:
    assert sorted(f.backend for f in RUNNABLE) == sorted(BACKENDS.names())


@runtime
@pytest.mark.parametrize("fmt", FORMATS.entries(), ids=FORMATS.names())
def test_format_for_path_finds_each_suffix_in_any_case(fmt: Format) -> None:
    for suffix in fmt.suffixes:
        assert format_for_path(f"dir/model{suffix}") is fmt
        assert format_for_path(f"MODEL{suffix.upper()}") is fmt


@runtime
@pytest.mark.parametrize("name", ["model.pt", "model"])
def test_unknown_suffix_is_one_line_listing_every_known_suffix(name: str) -> None:
    with pytest.raises(ModelFileError, match="unknown model file type") as err:
        format_for_path(name)
    line = err.value.one_line()
    assert "\n" not in line and name in line
    assert all(s in line for f in FORMATS.entries() for s in f.suffixes)


@runtime
def test_a_format_without_the_capability_is_refused_naming_the_ones_with_it() -> None:
    with pytest.raises(ModelFileError, match="cannot run keras") as err:
        format_for_path("run/model.keras", having="backend")
    hint = err.value.hint or ""
    assert all(f.suffix in hint for f in RUNNABLE) and ".keras" not in hint
    with pytest.raises(ModelFileError, match="keras"):
        backend_for("run/model.keras")
    with pytest.raises(ModelFileError, match="keras"):
        read_embedded("run/model.keras")


@runtime
def test_artifact_size_counts_the_openvino_bin(tmp_path: Path) -> None:
    xml, weights = tmp_path / "model.xml", tmp_path / "model.bin"
    xml.write_bytes(b"x" * 10)
    assert artifact_size(xml) == 10  # a lone .xml (the backend refuses it; the size is still honest)
    weights.write_bytes(b"w" * 100)
    assert artifact_size(xml) == FORMATS.get("openvino").size(xml) == 110
    assert FORMATS.get("openvino").companion_paths(xml) == [weights]
    other = tmp_path / "model.tflite"
    other.write_bytes(b"t" * 7)
    (tmp_path / "model.tflite.bin").write_bytes(b"not a companion")
    assert artifact_size(other) == 7
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"abc")
    assert artifact_size(notes) == 3  # not a model: just its size


@runtime
def test_targets_name_a_runnable_format_and_take_its_file_name() -> None:
    for target in TARGETS.entries():
        fmt = FORMATS.get(target.format)  # unknown -> UsageError
        assert fmt.backend is not None, f"{target.name} writes {fmt.name}, which nothing runs"
        assert target.filename == fmt.filename and target.suffix == fmt.suffix
    assert {t.format for t in TARGETS.entries()} == {f.name for f in RUNNABLE}  # every format has a target


@runtime
def test_bench_finds_each_formats_artifact(tmp_path: Path) -> None:
    assert artifact_names() == [f.filename for f in RUNNABLE]
    assert find_artifact(tmp_path) is None
    (tmp_path / "model.xml").write_text("<net/>")
    assert find_artifact(tmp_path) == tmp_path / "model.xml"


@runtime
def test_importing_the_table_imports_no_entry_code() -> None:
    """Entries hold lazy callables: the Pi imports the table without convert's writers or inspectors."""
    entry_code = ("edgemri.convert.inspect", "edgemri.convert.artifacts", "edgemri.runtime.embed")
    code = (f"import sys, edgemri.runtime.formats as f; f.FORMATS.names(); "
            f"print([m for m in {entry_code!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- round trips through each format's own writer ---------------------------------------------------
def _source_model(fmt: Format, models) -> object:
    """What ``fmt.write`` takes: flatbuffer bytes, an onnx.ModelProto, an openvino.Model."""
    if fmt.name == "tflite":
        return models.plain("tflite_fp32").read_bytes()
    if fmt.name == "onnx":
        onnx = pytest.importorskip("onnx")
        return onnx.load(str(models.plain("onnx")))
    ov = pytest.importorskip("openvino")
    return ov.Core().read_model(str(models.plain("openvino")))


@pytest.mark.parametrize("fmt", RUNNABLE, ids=[f.name for f in RUNNABLE])
def test_write_embed_read_inspect_and_run_round_trip(fmt: Format, tiny_models, tmp_path: Path) -> None:
    manifest = tiny_models.manifest.replace(format=fmt.name, arch=f"round-trip-{fmt.name}")
    path = fmt.write(tmp_path / fmt.filename, _source_model(fmt, tiny_models), manifest)
    assert path == tmp_path / fmt.filename and all(p.is_file() for p in fmt.companion_paths(path))
    assert read_embedded(path) == manifest  # the format's reader finds what its writer embedded
    from edgemri.convert.inspect import inspect_model

    info = inspect_model(path)
    assert info["format"] == fmt.name and info["size_bytes"] == artifact_size(path) == fmt.size(path)
    backend = backend_for(path).load(path, threads=1)
    assert backend.name == fmt.backend
    x = np.zeros((1, 16, 16, 3), np.float32)
    assert backend.run(x).shape == (1, 3)


# -- OpenVINO inference precision ------------------------------------------------------------------
def test_openvino_compiles_in_f32_by_default(tiny_models) -> None:
    pytest.importorskip("openvino")
    from edgemri.runtime.backends.openvino import OpenVINOBackend

    backend = OpenVINOBackend.load(tiny_models.openvino)
    assert backend.compile_config()["INFERENCE_PRECISION_HINT"] == "f32"
    assert backend._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"
    assert backend.info()["inference_precision"] == "f32"
    x = normalize(tiny_models.pixels(1), tiny_models.manifest.input)
    reduced = OpenVINOBackend.load(tiny_models.openvino, precision="bf16")
    assert reduced.inference_precision() in ("bf16", "f32")  # f32 where the CPU has no bf16
    np.testing.assert_allclose(reduced.run(x), backend.run(x), atol=0.05)


@runtime
@pytest.mark.parametrize("bad", ["fp32", "int8", ""])
def test_unknown_openvino_precision_is_a_one_line_usage_error(bad: str, tmp_path: Path) -> None:
    from edgemri.runtime.backends.openvino import OpenVINOBackend

    with pytest.raises(UsageError) as err:  # refused before the file is even looked at
        OpenVINOBackend.load(tmp_path / "model.xml", precision=bad)
    line = err.value.one_line()
    assert "\n" not in line and repr(bad) in line and "f32, bf16, f16" in line


# -- LiteRT: an installed but broken interpreter says why ------------------------------------------
@runtime
def test_broken_litert_import_reports_the_real_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_litert").mkdir()
    (tmp_path / "broken_litert" / "__init__.py").write_text("")
    (tmp_path / "broken_litert" / "interpreter.py").write_text(
        "raise ImportError('compiled against numpy 1.x, found numpy 2')")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(litert_mod, "INTERPRETERS", (("broken_litert.interpreter", "broken-litert"),
                                                     ("no_such_mod.interpreter", "x")))
    with pytest.raises(MissingExtraError) as err:
        litert_mod.find_interpreter()
    line = err.value.one_line()
    assert "could be imported" in line and "compiled against numpy 1.x" in line and "broken_litert" in line
    assert 'pip install "edgemri[litert]"' in line and "\n" not in line
    monkeypatch.setattr(litert_mod, "INTERPRETERS", (("no_such_mod.interpreter", "x"),))
    with pytest.raises(MissingExtraError, match="no TFLite interpreter is installed"):
        litert_mod.find_interpreter()
