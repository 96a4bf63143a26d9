"""The manifest contract: round trip, validation, and model I/O checks."""

from __future__ import annotations

import json

import pytest

from edgemri.errors import ManifestError
from edgemri.runtime.manifest import InputSpec, Manifest, OutputSpec, Quantization, sidecar_path

pytestmark = pytest.mark.runtime  # standard library only


def _manifest(**kw) -> Manifest:
    base = {"task": "brain4", "classes": ("glioma", "meningioma", "notumor", "pituitary"),
            "input": InputSpec(height=64, width=48)}
    base.update(kw)
    return Manifest(**base)


def test_round_trip_keeps_every_field(tmp_path):
    m = _manifest(
        input=InputSpec(height=64, width=48, dtype="int8", quantization=Quantization(0.0078125, -1)),
        output=OutputSpec(dtype="int8", quantization=Quantization(1 / 256, -128)),
        provenance={"run_id": "r1", "dataset_fingerprint": "abc"}, arch="mobilenetv2", format="tflite-int8",
    )
    path = m.save(tmp_path / "m.json")
    back = Manifest.load(path)
    assert back == m
    assert json.loads(path.read_text())["schema_version"] == 1


def test_sidecar_path_appends_json():
    assert str(sidecar_path("x/model.tflite")).endswith("model.tflite.json")


@pytest.mark.parametrize("change, needle", [
    ({"classes": ("a",)}, "two classes"),
    ({"classes": ("a", "a")}, "unique"),
    ({"input": InputSpec(height=64, width=64, color="sepia")}, "input.color"),
    ({"input": InputSpec(height=64, width=64, layout="HWCN")}, "layout"),
    ({"input": InputSpec(height=64, width=64, color="gray", channels=3)}, "channel"),
    ({"input": InputSpec(height=64, width=64, dtype="int8")}, "quantization"),
    ({"output": OutputSpec(kind="boxes")}, "output.kind"),
])
def test_invalid_manifests_are_refused(change, needle):
    with pytest.raises(ManifestError, match=needle):
        _manifest(**change)


def test_unknown_schema_version_is_refused():
    data = _manifest().to_dict()
    data["schema_version"] = 99
    with pytest.raises(ManifestError, match="schema_version 99"):
        Manifest.from_dict(data, "m.json")


def test_not_a_manifest_and_bad_json(tmp_path):
    p = tmp_path / "m.json"
    p.write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.load(p)
    with pytest.raises(ManifestError, match="not an edgemri manifest"):
        Manifest.from_dict({"task": "x"}, "m.json")
    with pytest.raises(ManifestError, match="not found"):
        Manifest.load(tmp_path / "missing.json")


def test_check_model_io_accepts_matching_and_dynamic_batch():
    m = _manifest()
    m.check_model_io((1, 64, 48, 3), (1, 4), "model.tflite")
    m.check_model_io((None, 64, 48, 3), (None, 4), "model.onnx")


@pytest.mark.parametrize("in_shape, out_shape, needle", [
    ((1, 64, 64, 3), (1, 4), "input shape"),
    ((1, 3, 64, 48), (1, 4), "input shape"),
    ((1, 64, 48, 3), (1, 2), "2 outputs"),
])
def test_check_model_io_rejects_mismatch(in_shape, out_shape, needle):
    with pytest.raises(ManifestError, match=needle):
        _manifest().check_model_io(in_shape, out_shape, "model.tflite")


def test_nchw_shape():
    spec = InputSpec(height=32, width=16, layout="NCHW")
    assert spec.shape == (1, 3, 32, 16)
