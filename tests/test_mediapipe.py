"""The real client: every TFLite target of a tiny trained run loads in MediaPipe Tasks' Python
``ImageClassifier`` and agrees with ``edgemri predict`` on the bundle's fixture images.

Full-integer targets are converted with ``--io uint8`` (MediaPipe refuses int8 tensors; checked
below). Two comparisons, because MediaPipe resizes and colour-converts itself:

* images already prepared by edgemri (its resize, its ``gray3``): MediaPipe's own resize is then a
  no-op, so top-1 must agree on every fixture and probabilities within ``PROB_TOL`` (float: equal
  to float rounding; uint8: a few output steps, because MediaPipe feeds pixels as the uint8 tensor
  where edgemri quantizes ``p * scale + offset`` with the model's zero point: half a step apart);
* the fixture PNGs as they are, converted to gray first for a ``gray3`` model (what an app must do:
  MediaPipe would feed colour straight through), and resized by MediaPipe (its bilinear, no
  antialiasing): top-1 agreement at least ``RESIZED_MIN_AGREEMENT`` (docs/convert.md gives the
  figures measured here).

mediapipe pins absl-py~=2.3, tensorflow-model-optimization absl-py~=1.2: CI installs it into the
dev venv with ``--no-deps`` (.ci/run) and sets EDGEMRI_REQUIRE_MEDIAPIPE=1, which turns the skip
on a box without it into a failure.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from edgemri.runtime.images import load_image
from edgemri.runtime.preprocess import prepare_pixels, to_color

pytestmark = pytest.mark.slow

TFLITE_TARGETS = ("tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8", "tflite-int8-ptq")
RESIZED_MIN_AGREEMENT = 0.75
FLOAT_PROB_TOL = 1e-5
# tflite-dynamic quantizes activations at run time; MediaPipe's and LiteRT's hybrid kernels round them
# differently (seen: 6e-5 in one CI run, 0 in others), still far below a uint8 output step (4e-3)
HYBRID_PROB_TOL = 1e-3
UINT8_OUTPUT_STEPS = 8  # measured: at most 4 steps of 1/256 apart on these fixtures


def _mediapipe() -> SimpleNamespace:
    try:
        mp = importlib.import_module("mediapipe")
        vision = importlib.import_module("mediapipe.tasks.python.vision")
        base = importlib.import_module("mediapipe.tasks.python.core.base_options")
    except ImportError as exc:
        if os.environ.get("EDGEMRI_REQUIRE_MEDIAPIPE"):
            raise
        pytest.skip(f"mediapipe is not installed ({exc}): pip install \"edgemri[mediapipe]\"")
    return SimpleNamespace(mp=mp, vision=vision, base=base)


@pytest.fixture(scope="module")
def mp() -> SimpleNamespace:
    return _mediapipe()


@pytest.fixture(scope="module")
def exported(mp, make_run, tmp_path_factory) -> SimpleNamespace:
    """A tiny trained run converted to every TFLite target (uint8 I/O), and a bundle's fixtures."""
    from edgemri.bundle import make_bundle
    from edgemri.convert.api import convert

    root = tmp_path_factory.mktemp("mediapipe")
    run = make_run(root)
    results = convert(run.root, list(TFLITE_TARGETS), calib=24, min_agreement=0.5, progress=False, io="uint8")
    assert [r.status for r in results] == ["ok"] * len(TFLITE_TARGETS), [r.reason for r in results]
    bundle = Path(make_bundle(run.root, root / "bundle", n_fixtures=8, make_zip=False)["out"])
    return SimpleNamespace(run=run, paths={r.target: r.path for r in results},
                           fixtures=sorted((bundle / "fixtures").glob("*.png")))


class Client:
    """MediaPipe's ImageClassifier on one model: {class name: score} per RGB uint8 image."""

    def __init__(self, mp: SimpleNamespace, path: Path):
        self._mp = mp
        opts = mp.vision.ImageClassifierOptions(base_options=mp.base.BaseOptions(model_asset_path=str(path)),
                                                max_results=-1)
        self._clf = mp.vision.ImageClassifier.create_from_options(opts)

    def scores(self, rgb: np.ndarray) -> dict[str, float]:
        image = self._mp.mp.Image(image_format=self._mp.mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        return {c.category_name: c.score for c in self._clf.classify(image).classifications[0].categories}

    def close(self) -> None:
        self._clf.close()


def _compare(mp: SimpleNamespace, path: Path, fixtures: list[Path]) -> dict[str, Any]:
    from edgemri.runtime.predictor import Predictor

    predictor = Predictor.load(path)
    spec = predictor.input_spec
    client = Client(mp, path)
    try:
        presized, resized, diffs = [], [], []
        for png in fixtures:
            ours = predictor.predict_one(png)  # top-1 (a temperature never changes it)
            arr = load_image(png)
            pixels = prepare_pixels(arr, spec)
            # MediaPipe reports the model's own scores; edgemri predict also applies the manifest's
            # temperature (issue 17), so the probabilities are compared uncalibrated
            raw = predictor.predict_pixels(pixels[None])[0]
            exact = client.scores(pixels)
            own = client.scores(to_color(arr, "rgb" if spec.color == "rgb" else "gray3"))
            presized.append(max(exact, key=exact.get) == ours.label)
            resized.append(max(own, key=own.get) == ours.label)
            diffs.append(max(abs(exact[c] - float(p)) for c, p in zip(predictor.classes, raw)))
    finally:
        client.close()
    return {"presized": presized, "resized": resized, "max_diff": max(diffs), "output": predictor.output_spec}


@pytest.mark.parametrize("target", TFLITE_TARGETS)
def test_mediapipe_agrees_with_edgemri_predict(mp, exported, target: str) -> None:
    assert len(exported.fixtures) >= 8
    got = _compare(mp, exported.paths[target], exported.fixtures)
    assert all(got["presized"]), (target, got["presized"])
    q = got["output"].quantization
    float_tol = HYBRID_PROB_TOL if target == "tflite-dynamic" else FLOAT_PROB_TOL
    tol = float_tol if q is None else UINT8_OUTPUT_STEPS * q.scale
    assert got["max_diff"] <= tol, (target, got["max_diff"], tol)
    assert np.mean(got["resized"]) >= RESIZED_MIN_AGREEMENT, (target, got["resized"])


def test_uint8_io_is_what_the_manifest_and_metadata_say(exported) -> None:
    from edgemri.convert.inspect import inspect_model
    from edgemri.runtime.manifest import Manifest, sidecar_path

    for target in ("tflite-int8", "tflite-int8-ptq"):
        path = exported.paths[target]
        info, manifest = inspect_model(path), Manifest.load(sidecar_path(path))
        assert info["inputs"][0]["dtype"] == info["outputs"][0]["dtype"] == "uint8"
        assert manifest.input.dtype == manifest.output.dtype == "uint8" and manifest.extra["io"] == "uint8"
        assert manifest.input.quantization.to_dict() == pytest.approx(info["inputs"][0]["quantization"])
        assert info["mediapipe"] == [], info["mediapipe"]


def test_mediapipe_refuses_what_inspect_flags(mp, tiny_models, tmp_path: Path) -> None:
    """The judge agrees with `edgemri inspect`: int8 tensors and a model without metadata are refused."""
    from edgemri.convert.inspect import inspect_model
    from edgemri.convert.tflite import with_metadata
    from edgemri.runtime.manifest import Manifest, sidecar_path

    int8 = tmp_path / "int8.tflite"
    int8.write_bytes(with_metadata(tiny_models.plain("tflite_int8").read_bytes(),
                                   Manifest.load(sidecar_path(tiny_models.tflite_int8))))
    # MediaPipe's status codes map to assorted exception types (a missing NormalizationOptions is a
    # FileNotFoundError): match the message it gives instead.
    for path, why in ((int8, "INT8"), (tiny_models.tflite_fp32, "NormalizationOptions")):
        assert inspect_model(path)["mediapipe"], path  # the committed fp32 model has no metadata
        with pytest.raises(Exception, match=why):
            Client(mp, path)
