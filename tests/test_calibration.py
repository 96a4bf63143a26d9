"""Temperature scaling: the runtime applies it exactly, ``edgemri calibrate`` fits it per artifact."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgemri.runtime.calibration import (
    apply_temperature,
    brier,
    ece,
    ece_floor,
    log_scores,
    probability_floor,
    reliability,
    softmax,
)
from edgemri.runtime.manifest import Calibration, Manifest, sidecar_path


def _logits(n: int = 200, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    z = rng.normal(size=(n, k))
    z[np.arange(n), labels] += 2.0
    return z, labels


def _calibrated(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits): a perfectly calibrated model's outputs."""
    z, _ = _logits(n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    return z, np.array([rng.choice(z.shape[1], p=p) for p in softmax(z)])


@pytest.mark.runtime
def test_temperature_on_probabilities_equals_temperature_on_logits() -> None:
    z, _ = _logits()
    for t in (0.5, 1.7):
        from_probs = apply_temperature(softmax(z), t, "probabilities", floor=1e-300)
        np.testing.assert_allclose(from_probs, softmax(z / t), rtol=1e-5, atol=1e-7)


@pytest.mark.runtime
def test_temperature_one_is_bit_exact_and_bad_temperature_is_refused() -> None:
    probs = softmax(_logits()[0]).astype(np.float32)
    assert np.array_equal(apply_temperature(probs, 1.0), probs)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            apply_temperature(probs, bad)


@pytest.mark.runtime
def test_quantized_zero_gets_a_finite_floor(tiny_models) -> None:
    spec = tiny_models.int8_manifest.output
    floor = probability_floor(spec)
    assert 0 < floor < spec.quantization.scale
    scores = log_scores(np.array([[0.0, 1.0]]), "probabilities", floor)
    assert np.isfinite(scores).all()
    out = apply_temperature(np.array([[0.0, 0.25, 0.75]]), 2.0, floor=floor)
    assert out[0, 0] > 0 and out[0].sum() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.runtime
def test_metrics_reward_calibration() -> None:
    z, labels = _calibrated(2000)
    good = softmax(z)
    overconfident = softmax(z * 4)
    assert ece(good, labels) < ece(overconfident, labels)
    assert brier(good, labels) < brier(overconfident, labels)
    bins = reliability(good, labels)
    assert sum(b["count"] for b in bins) == len(labels)
    onehot = np.eye(4)[labels]
    assert brier(onehot, labels) == 0.0 and ece(onehot, labels) == 0.0


def test_fit_temperature_recovers_the_scale() -> None:
    from edgemri.calibrate import fit_temperature

    z, labels = _calibrated(3000)
    t = fit_temperature(softmax(z * 3.0), labels, floor=1e-12)  # a 3x over-confident model
    assert t == pytest.approx(3.0, rel=0.15)


def test_a_few_exact_zeros_do_not_set_the_temperature() -> None:
    """Outputs that round a wrong image's true class to 0 are fitted at FIT_FLOOR, not at 1e-12."""
    from edgemri.calibrate import fit_temperature
    from edgemri.runtime.calibration import nll

    z, labels = _calibrated(1000)
    probs = softmax(z).astype(np.float64)
    wrong = np.flatnonzero(probs.argmax(1) != labels)[:20]  # 2% of the images: sure and wrong, p_true = 0
    probs[wrong] = np.eye(probs.shape[1])[probs[wrong].argmax(1)]
    t = fit_temperature(probs, labels, floor=1e-12)
    assert 0.7 < t < 1.4  # the other 980 images are calibrated at T = 1
    scores = np.log(np.maximum(probs, 1e-12))
    uncapped = min(np.exp(np.linspace(np.log(0.5), np.log(20), 200)),
                   key=lambda T: nll(softmax(scores / T), labels))
    assert uncapped > 1.5 * t  # what the plain NLL fit did: twenty images set T


def test_sure_and_wrong_uint8_outputs_still_count_when_t_sharpens() -> None:
    """On quantized outputs the fit is the plain NLL fit of the floored scores, with no per-image cap.

    The fit before this one capped each image's NLL at -log(2**-10): a sure-and-wrong image (true class
    rounded to 0) sits at the cap, so a sharpening T < 1 cost it nothing and T came out too low.
    """
    from edgemri.calibrate import FIT_FLOOR, fit_temperature
    from edgemri.runtime.calibration import nll

    z, labels = _calibrated(3000)
    probs = softmax(z * 0.8).astype(np.float64)  # under-confident: alone it fits T ~ 0.8
    wrong = np.flatnonzero(probs.argmax(1) != labels)[:60]  # 2% sure and wrong
    probs[wrong] = np.eye(probs.shape[1])[probs[wrong].argmax(1)]
    quantized = np.round(probs * 256) / 256  # a uint8 softmax: exact zeros
    t = fit_temperature(quantized, labels, floor=1e-12)  # as onnx-int8 reports it: a float output
    scores = np.log(np.maximum(quantized, FIT_FLOOR))
    grid = np.exp(np.linspace(np.log(0.3), np.log(5), 300))
    plain = min(grid, key=lambda T: nll(softmax(scores / T), labels))
    assert t == pytest.approx(plain, rel=0.03)
    assert t > 0.9  # the capped fit: 0.77


@pytest.mark.runtime
def test_predictor_applies_the_manifest_temperature(tiny_models, tmp_path) -> None:
    from edgemri.runtime.predictor import Predictor

    folder = tmp_path / "m"
    shutil.copytree(tiny_models.tflite_fp32.parent, folder)
    model = folder / tiny_models.tflite_fp32.name
    pixels = tiny_models.pixels(4)
    raw = Predictor.load(model).predict_pixels(pixels)
    manifest = Manifest.load(sidecar_path(model))
    manifest.replace(calibration=Calibration(temperature=2.0, fitted_on="test")).save(sidecar_path(model))
    pred = Predictor.load(model)
    np.testing.assert_array_equal(pred.predict_pixels(pixels, calibrated=False), raw)
    calibrated = pred.predict_pixels(pixels, calibrated=True)
    np.testing.assert_allclose(calibrated, apply_temperature(raw, 2.0), rtol=1e-6)
    assert (calibrated.max(1) < raw.max(1)).all()  # T > 1 softens
    one = pred.predict_one(tiny_models.pixels(1)[0])
    np.testing.assert_allclose(one.probabilities, calibrated[0], rtol=1e-5, atol=1e-6)


def test_convert_and_calibrate_fit_each_artifact_on_its_own_outputs(make_run, tmp_path) -> None:
    from edgemri.cli import main
    from edgemri.convert.api import convert

    run = make_run(tmp_path, per_class=8, epochs=3)
    [result] = convert(run.root, ["tflite-fp32"], progress=False)
    assert result.status == "ok", result.reason
    written = Manifest.load(sidecar_path(result.path))
    assert written.calibration is not None and written.calibration.temperature > 0
    assert written.calibration.metrics["images"] == result.verification["images"]
    assert written.ood is not None and written.ood.metrics["val_pass"] >= 0.95
    assert json.loads((result.path.parent / "verification.json").read_text())["calibration"]["temperature"] > 0

    assert main(["calibrate", str(run.root), "--json"]) == 0
    record = json.loads((run.root / "calibration.json").read_text())
    names = [m["artifact"] for m in record["models"]]
    assert names == [str(run.model), str(result.path)]
    assert record["reference"]["grayscale"] is True and record["reference"]["images"] > 0


@pytest.mark.runtime
def test_bench_safety_section_reports_before_and_after(tiny_models, tmp_path) -> None:
    from types import SimpleNamespace

    from PIL import Image

    from edgemri.bench.safety import reliability_svg, safety_section, safety_tables

    folder = tmp_path / "m"
    shutil.copytree(tiny_models.tflite_fp32.parent, folder)
    model = folder / tiny_models.tflite_fp32.name
    manifest = Manifest.load(sidecar_path(model))
    manifest.replace(calibration=Calibration(temperature=2.0, fitted_on="test")).save(sidecar_path(model))
    paths = []
    for i, px in enumerate(tiny_models.pixels(6)):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(px).save(paths[-1])
    models = [SimpleNamespace(name="keras", path=None, kind="keras"), SimpleNamespace(name="t", path=model)]
    section = safety_section(models, paths, [0, 1, 2, 0, 1, 2])
    [entry] = section["models"]
    assert entry["temperature"] == 2.0 and entry["guard"] is False
    assert entry["before"]["brier"] != entry["after"]["brier"]
    assert entry["flagged"]["evaluation set"] is None
    tables = safety_tables({"safety": section})
    assert [t[0].split(" ")[0] for t in tables] == ["Calibration", "Out-of-distribution"]
    assert tables[1][2][0][1] == "guard off"
    floor = entry["ece_floor"]
    assert floor["n"] == 6 and 0 < floor["mean"] <= floor["p95"]
    assert tables[0][2][0][4] == f"{floor['mean']:.4f} / {floor['p95']:.4f}"
    old = {"safety": {"models": [{k: v for k, v in entry.items() if k != "ece_floor"}]}}
    assert safety_tables(old)[0][2][0][4] == "–"  # reports written before the floor existed
    assert reliability_svg(section["models"]).count("<svg") == 1


def test_update_sections_reaches_the_sidecar_and_the_embedded_copy(tiny_models, tmp_path):
    """What edgemri calibrate (and tune) write: both manifest copies, the rest of each kept."""
    import shutil

    from edgemri.convert.artifacts import update_sections
    from edgemri.runtime.embed import read_embedded
    from edgemri.runtime.manifest import Calibration, Manifest, sidecar_path

    model = tmp_path / "model.tflite"
    shutil.copy(tiny_models.tflite_int8, model)
    shutil.copy(sidecar_path(tiny_models.tflite_int8), sidecar_path(model))
    before = Manifest.load(sidecar_path(model)).replace(extra={"verification": {"status": "ok"}})
    before.save(sidecar_path(model))  # sidecar-only content (as convert writes it) must survive
    written = update_sections(model, calibration=Calibration(temperature=1.7, fitted_on="val"))
    assert written == [str(model), str(sidecar_path(model))]
    for copy in (Manifest.load(sidecar_path(model)), read_embedded(model)):
        assert copy.calibration.temperature == 1.7 and copy.classes == before.classes
    after = Manifest.load(sidecar_path(model))
    assert after.input == before.input and after.extra["verification"] == {"status": "ok"}
    runtime_hint = update_sections(model, ood=None)  # a second update keeps the first one's section
    assert runtime_hint and Manifest.load(sidecar_path(model)).calibration.temperature == 1.7


def test_ece_floor_is_what_perfect_calibration_reads_at_this_size() -> None:
    """Labels drawn from the probabilities themselves are perfectly calibrated: their ECE is noise."""
    rng = np.random.default_rng(1)
    probs = softmax(rng.normal(scale=2.0, size=(4000, 3)))
    labels = np.array([rng.choice(3, p=row) for row in probs])
    big = ece_floor(probs)
    small = ece_floor(probs[:94])
    assert small["n"] == 94 and big["n"] == 4000
    assert small["mean"] > 3 * big["mean"]  # ECE's small-sample bias: ~1/sqrt(n)
    assert ece(probs, labels) <= big["p95"] * 1.5
    overconfident = softmax(np.log(probs) * 3)  # same labels, sharpened: miscalibrated
    assert ece(overconfident, labels) > 3 * big["p95"]
    assert np.isnan(ece_floor(np.zeros((0, 3)))["mean"])
