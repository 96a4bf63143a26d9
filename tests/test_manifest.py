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
    assert json.loads(path.read_text())["schema_version"] == 2


def test_version_1_manifests_still_load_and_v2_sections_round_trip(tmp_path):
    from edgemri.runtime.manifest import Calibration, OODGuard, RuntimeHints

    old = _manifest().to_dict()
    old["schema_version"] = 1
    for key in ("runtime", "calibration", "ood"):
        old.pop(key)
    back = Manifest.from_dict(old, "old.json")
    assert (back.runtime, back.calibration, back.ood) == (None, None, None)
    rich = _manifest().replace(
        runtime=RuntimeHints(backend="litert", threads=1, options={"xnnpack": False}, measured={"p50_ms": 2.1}),
        calibration=Calibration(temperature=1.4, fitted_on="val", metrics={"ece_after": 0.01}),
        ood=OODGuard(score="msp", threshold=0.42, reference={"color": "gray"}))
    path = rich.save(tmp_path / "rich.json")
    data = json.loads(path.read_text())
    data["runtime"]["from_a_newer_edgemri"] = 1  # unknown keys in a section are ignored
    again = Manifest.from_dict(data, "rich.json")
    assert again == rich and again.runtime.options == {"xnnpack": False}
    data["calibration"] = "hot"
    with pytest.raises(ManifestError, match="rich.json is malformed"):
        Manifest.from_dict(data, "rich.json")


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
