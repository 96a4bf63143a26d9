"""``edgemri calibrate RUN``: temperatures and the out-of-distribution guard, fitted on val.

Why per artifact: quantization changes confidence (the brain model's int8 artifact is sharper or
softer than its FP32 parent), so each artifact's temperature is fitted on that artifact's own
outputs on the run's validation split and written into its sidecar manifest (``calibration``),
together with the guard (``ood``: the training-image reference and the score threshold chosen
so that >= 95% of validation images pass). ``RUN/calibration.json`` keeps the reference and the
Keras model's figures, so ``edgemri convert`` can calibrate new artifacts without re-reading the
training images. Runs automatically at the end of ``edgemri train`` (Keras model only) and in
``edgemri convert`` (each verified artifact).

Only typer and the standard library at module level: ``edgemri --help`` stays light.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import numpy as np

    from edgemri.rundir import RunDir
    from edgemri.runtime.manifest import Manifest

CALIBRATION_FILE = "calibration.json"
REFERENCE_IMAGES = 1000  # training images summarised for the guard (evenly spaced, deterministic)
IMAGE_QUANTILE = 0.99  # share of val images whose image statistics pass
TARGET_PASS = 0.96  # share of val images that pass all checks (the aim is >= 95%; 1 point margin)
T_RANGE = (0.05, 20.0)
#: Floor of the probabilities the temperature is fitted on when the outputs hold exact zeros, i.e. were
#: quantized (onnx-int8 and openvino-int8 dequantize a uint8 softmax into float): 2**-10, the smallest
#: probability a LiteRT uint8 output states, so all quantized outputs are fitted on one scale. Floored at
#: 1e-12 instead, five wrong images whose true class rounded to 0 (27.6 nats each) set T alone (brain4
#: onnx-int8: T 5.09, test ECE 0.014 -> 0.061). It floors the scores, not the loss: an earlier cap on each
#: image's NLL at -log(2**-10) stopped penalising sure-and-wrong images once a T < 1 pushed them past it,
#: which biased T low (brain4-mobilenetv2 tflite-int8-ptq: T 0.77, val ECE 0.026 -> 0.037; now T 1.06,
#: ECE 0.027). Float outputs without zeros keep their own floor: flooring them would bias T low too.
FIT_FLOOR = 2.0**-10


# -- fitting (numpy, no framework) ------------------------------------------------------------------
def fit_temperature(probs: np.ndarray, labels: np.ndarray, floor: float, kind: str = "probabilities") -> float:
    """The temperature minimising validation NLL of ``softmax(log p / T)``; golden section on log T.

    NLL in log T is unimodal for temperature scaling, so golden section (no scipy) finds it. The
    probabilities of a quantized output are floored at ``FIT_FLOOR`` (see there), so a handful of
    outputs that round the true class to 0 cannot set T alone; the runtime still applies T at the
    artifact's own floor, which changes only probabilities that are ~0 either way.
    """
    import numpy as np

    from edgemri.runtime.calibration import log_scores, softmax

    if len(labels) == 0:
        return 1.0
    quantized = kind == "probabilities" and bool(np.any(np.asarray(probs) == 0))
    scores = log_scores(probs, kind, max(floor, FIT_FLOOR) if quantized else floor)
    rows, y = np.arange(len(labels)), np.asarray(labels)

    def loss(log_t: float) -> float:
        true = softmax(scores / math.exp(log_t))[rows, y].astype(np.float64)
        return float(np.mean(-np.log(np.maximum(true, 1e-300))))

    lo, hi = math.log(T_RANGE[0]), math.log(T_RANGE[1])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return float(np.round(math.exp((lo + hi) / 2), 6))


def fit_reference(colours: list[float], sizes: list[tuple[int, int]], features: np.ndarray,
                  trained_on: str) -> dict[str, Any]:
    """The compact summary of the training images that the guard compares against."""
    import numpy as np

    from edgemri.runtime.guard import BINS, GRID, REFERENCE_VERSION

    colour = np.asarray(colours, dtype=np.float64)
    gray = bool(len(colour) and np.quantile(colour, 0.99) <= 3.0)
    hs = np.asarray([s[0] for s in sizes], dtype=np.float64)
    ws = np.asarray([s[1] for s in sizes], dtype=np.float64)
    aspect = ws / hs
    sides = np.minimum(hs, ws)
    return {
        "version": REFERENCE_VERSION,
        "images": len(colour),
        "trained_on": trained_on,
        "grayscale": gray,
        "colour_limit": round(float(max(4.0, 2.0 * np.quantile(colour, 0.999))) if len(colour) else 4.0, 4),
        "size": {"min_side": int(sides.min()), "max_side": int(np.maximum(hs, ws).max()),
                 "aspect_min": round(float(aspect.min()), 4), "aspect_max": round(float(aspect.max()), 4),
                 "aspect_tolerance": 1.25, "min_side_limit": int(sides.min()) // 2},
        "features": {"grid": GRID, "bins": BINS, "sd_floor": 1e-3,
                     "mean": [round(float(v), 6) for v in features.mean(axis=0)],
                     "sd": [round(float(v), 6) for v in features.std(axis=0)]},
        "image_threshold": None,
    }


def image_threshold(reference: dict[str, Any], val_pixels: np.ndarray) -> float:
    """The |z| that ``IMAGE_QUANTILE`` of the validation images stay below."""
    import numpy as np

    from edgemri.runtime.guard import Guard
    from edgemri.runtime.manifest import OODGuard

    guard = Guard(OODGuard(reference={**reference, "image_threshold": math.inf}))
    z = np.asarray([guard.image_z(p)[0] for p in val_pixels])
    # "higher": at least IMAGE_QUANTILE of the images pass even on a small split
    return math.ceil(float(np.quantile(z, IMAGE_QUANTILE, method="higher")) * 1e4) / 1e4 if len(z) else math.inf


def score_threshold(msp: np.ndarray, image_ok: np.ndarray, target: float = TARGET_PASS) -> float:
    """The highest MSP threshold with which ``target`` of the val images still pass every check."""
    import numpy as np

    if not len(msp):
        return 0.0
    keep = math.ceil(target * len(msp))
    ok_scores = np.sort(msp[image_ok])[::-1]
    if len(ok_scores) < keep:  # the image checks alone already reject more than allowed
        return 0.0
    return float(np.floor(ok_scores[keep - 1] * 1e6) / 1e6)


# -- data ---------------------------------------------------------------------------------------
class Images:
    """One split's decoded images summarised: colourfulness, size, prepared pixels, labels."""

    def __init__(self, samples: list[Any], manifest: Manifest):
        import numpy as np

        from edgemri.runtime.guard import colourfulness
        from edgemri.runtime.images import load_image
        from edgemri.runtime.preprocess import prepare_pixels

        classes = list(manifest.classes)
        self.colours: list[float] = []
        self.sizes: list[tuple[int, int]] = []
        pixels = []
        for s in samples:
            arr = load_image(s.path)
            self.colours.append(colourfulness(arr))
            self.sizes.append((int(arr.shape[0]), int(arr.shape[1])))
            pixels.append(prepare_pixels(arr, manifest.input))
        spec = manifest.input
        self.pixels = np.stack(pixels) if pixels else np.zeros((0, spec.height, spec.width, spec.channels), np.uint8)
        self.labels = np.asarray([classes.index(s.label) for s in samples], dtype=np.int64)

    def raw_ok(self, reference: dict[str, Any]) -> np.ndarray:
        """Which images pass the colour and size checks (the guard's first two)."""
        import numpy as np

        from edgemri.runtime.guard import raw_reasons

        return np.asarray([not raw_reasons(c, h, w, reference) for c, (h, w) in zip(self.colours, self.sizes)],
                          dtype=bool)


def _evenly(items: list[Any], n: int) -> list[Any]:
    if len(items) <= n:
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def trained_on(manifest: Manifest, gray: bool) -> str:
    """Words for the verdict: 'grayscale MRI' for an MRI task, else 'grayscale images'."""
    kind = "MRI" if "mri" in manifest.task.lower() else "images"
    return f"{'grayscale' if gray else 'colour'} {kind}"


def build_reference(run: RunDir, data: str | os.PathLike[str] | None = None) -> tuple[dict[str, Any], Images]:
    """Reference from up to ``REFERENCE_IMAGES`` training images; returns it with the val images."""
    from edgemri.data.split import Split

    manifest = run.manifest()
    split = Split.load(run.split_path, root=data)
    train = Images(_evenly(split.samples("train"), REFERENCE_IMAGES), manifest)
    val = Images(split.samples("val"), manifest)
    if not len(train.labels) or not len(val.labels):
        from edgemri.errors import DataError

        raise DataError(f"{run.split_path} needs train and val images to calibrate on",
                        "Re-create the split with a val part (edgemri train --val-fraction)")
    import numpy as np

    from edgemri.runtime.guard import image_features

    feats = np.stack([image_features(p) for p in train.pixels])
    ref = fit_reference(train.colours, train.sizes, feats, "")
    ref["trained_on"] = trained_on(manifest, ref["grayscale"])
    ref["image_threshold"] = image_threshold(ref, val.pixels)
    return ref, val


# -- per model ----------------------------------------------------------------------------------
def calibrate_probs(raw: np.ndarray, labels: np.ndarray, floor: float, reference: dict[str, Any],
                    image_ok: np.ndarray, fitted_on: str) -> tuple[Any, Any]:
    """(Calibration, OODGuard) manifest sections for one model's raw val probabilities."""
    import numpy as np

    from edgemri.runtime.calibration import apply_temperature, calibration_metrics
    from edgemri.runtime.manifest import Calibration, OODGuard

    temperature = fit_temperature(raw, labels, floor)
    probs = apply_temperature(raw, temperature, "probabilities", floor)
    before, after = calibration_metrics(raw, labels), calibration_metrics(probs, labels)
    msp = probs.max(axis=1).astype(np.float64)
    threshold = score_threshold(msp, image_ok)
    passed = float(np.mean(image_ok & (msp >= threshold)))
    cal = Calibration(temperature=temperature, fitted_on=fitted_on,
                      metrics={"images": len(labels), "floor": floor, "before": _round(before),
                               "after": _round(after)})
    ood = OODGuard(score="msp", threshold=threshold, reference=reference,
                   metrics={"val_images": len(labels), "val_pass": round(passed, 4), "target_pass": TARGET_PASS,
                            "image_quantile": IMAGE_QUANTILE})
    return cal, ood


def _round(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6) if isinstance(v, float) and math.isfinite(v) else v for k, v in metrics.items()}


def calibrate_artifact(path: Path, val: Images, reference: dict[str, Any], image_ok: np.ndarray) -> dict[str, Any]:
    """Fit one artifact on its own val outputs and write both sections into its manifests."""
    from edgemri.convert.artifacts import update_sections
    from edgemri.runtime.calibration import probability_floor
    from edgemri.runtime.predictor import Predictor

    predictor = Predictor.load(path)
    raw = predictor.predict_pixels(val.pixels, calibrated=False)
    cal, ood = calibrate_probs(raw, val.labels, probability_floor(predictor.output_spec), reference,
                               image_ok, f"val ({len(val.labels)} images)")
    update_sections(path, calibration=cal, ood=ood)  # sidecar and the embedded copy
    return {"artifact": str(path), "temperature": cal.temperature, **_summary(cal, ood)}


def _summary(cal: Any, ood: Any) -> dict[str, Any]:
    return {"ece_before": cal.metrics["before"]["ece"], "ece_after": cal.metrics["after"]["ece"],
            "brier_before": cal.metrics["before"]["brier"], "brier_after": cal.metrics["after"]["brier"],
            "msp_threshold": ood.threshold, "val_pass": ood.metrics["val_pass"]}


def calibrate_keras(run: RunDir, val: Images, reference: dict[str, Any], image_ok: np.ndarray) -> dict[str, Any]:
    """The FP32 Keras model's temperature (recorded in calibration.json; needs Keras)."""
    from edgemri.convert.source import keras_probs, load_keras_model
    from edgemri.runtime.calibration import FLOAT_FLOOR

    model = load_keras_model(run.model)
    raw = keras_probs(model, val.pixels, run.manifest().input)
    cal, ood = calibrate_probs(raw, val.labels, FLOAT_FLOOR, reference, image_ok, f"val ({len(val.labels)} images)")
    return {"artifact": str(run.model), "temperature": cal.temperature, **_summary(cal, ood)}


def export_artifacts(run: RunDir) -> list[Path]:
    """Every artifact with a sidecar manifest under ``RUN/export/<target>/``."""
    from edgemri.runtime.formats import FORMATS
    from edgemri.runtime.manifest import sidecar_path

    suffixes = {s for f in FORMATS.entries() if f.backend for s in f.suffixes}
    if not run.export_dir.is_dir():
        return []
    return sorted(p for p in run.export_dir.glob("*/*") if p.suffix in suffixes and sidecar_path(p).is_file())


def calibrate_run(run_path: str | os.PathLike[str] | RunDir, data: str | os.PathLike[str] | None = None,
                  keras: bool = True, artifacts: bool = True) -> dict[str, Any]:
    """Fit the reference, the Keras model (optional) and every exported artifact; write calibration.json."""
    from edgemri.atomic import write_json
    from edgemri.rundir import RunDir

    run = run_path if isinstance(run_path, RunDir) else RunDir.open(run_path)
    reference, val = build_reference(run, data)
    image_ok = val.raw_ok(reference) & images_ok(reference, val.pixels)
    record: dict[str, Any] = {"reference": reference, "val_images": len(val.labels), "models": []}
    if keras:
        record["models"].append(calibrate_keras(run, val, reference, image_ok))
    if artifacts:
        record["models"] += [calibrate_artifact(p, val, reference, image_ok) for p in export_artifacts(run)]
    write_json(run.root / CALIBRATION_FILE, record)
    return record


def after_training(run: RunDir, log: Any = None) -> dict[str, Any] | None:
    """The end of ``edgemri train``: fit the Keras model and the reference; never fail the training.

    A run without val images (or whose images cannot be re-read) is left uncalibrated with one
    logged line; ``edgemri calibrate RUN`` can be run later.
    """
    from edgemri.errors import EdgemriError

    try:
        record = calibrate_run(run, keras=True, artifacts=False)
    except EdgemriError as exc:
        if log is not None:
            log(f"not calibrated: {exc.one_line()}")
        return None
    if log is not None and record["models"]:
        m = record["models"][0]
        log(f"calibrated on val: T={m['temperature']:.3f}  ECE {m['ece_before']:.4f} -> {m['ece_after']:.4f}")
    return record


def images_ok(reference: dict[str, Any], pixels: np.ndarray) -> np.ndarray:
    import numpy as np

    from edgemri.runtime.guard import Guard
    from edgemri.runtime.manifest import OODGuard

    guard = Guard(OODGuard(reference=reference))
    return np.asarray([guard.image_z(p)[0] <= reference["image_threshold"] for p in pixels], dtype=bool)


def load_reference(run: RunDir) -> dict[str, Any] | None:
    """The guard reference recorded by an earlier calibrate/train, if any."""
    import json

    path = run.root / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text(encoding="utf-8"))["reference"])
    except (ValueError, KeyError, TypeError):
        return None


# -- CLI ----------------------------------------------------------------------------------------
def calibrate_command(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="Run directory (with split.json and export/).")],
    data: Annotated[Path | None, typer.Option("--data", help="Dataset root, when it moved since split.json "
                                              "was written.")] = None,
    keras: Annotated[bool, typer.Option("--keras/--no-keras", help="Also fit the FP32 Keras model "
                                        "(needs the train extra).")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """Fit temperature scaling and the out-of-distribution guard on the run's validation split.

    Writes each artifact's sidecar manifest (calibration + ood sections) and RUN/calibration.json.
    """
    import json

    from edgemri.extras import available

    record = calibrate_run(run, data=data, keras=keras and available("keras"))
    if as_json:
        typer.echo(json.dumps(record["models"], indent=2))
        return
    for m in record["models"]:
        typer.echo(f"{m['artifact']}: T={m['temperature']:.3f}  ECE {m['ece_before']:.4f} -> {m['ece_after']:.4f}  "
                   f"Brier {m['brier_before']:.4f} -> {m['brier_after']:.4f}  MSP >= {m['msp_threshold']:.3f}  "
                   f"val pass {100 * m['val_pass']:.1f}%")
    typer.echo(f"reference: {record['reference']['images']} training images, "
               f"{record['reference']['trained_on']}; wrote {Path(run) / CALIBRATION_FILE}")


def register(app: typer.Typer) -> None:
    """Add ``edgemri calibrate`` to the app."""
    app.command("calibrate")(calibrate_command)
