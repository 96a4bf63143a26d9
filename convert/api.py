"""``convert(run, targets)``: every requested target converted, checked, verified and recorded.

One target failing does not stop the others: each gets a ``ConversionResult`` (ok,
failed-verification or failed with the one-line reason) and the CLI exits non-zero if any is
not ok. Validation images and the FP32 reference probabilities are computed once for all targets.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgemri.atomic import write_json
from edgemri.convert.calibration import DEFAULT_CALIB_IMAGES
from edgemri.convert.context import DEFAULT_OPSET, ConvertContext, ConvertOptions
from edgemri.convert.targets import DEFAULT_IO, Target, resolve
from edgemri.errors import EdgemriError
from edgemri.extras import EXTRA_OF, available, install_hint
from edgemri.rundir import RunDir
from edgemri.runtime.formats import artifact_size
from edgemri.runtime.manifest import Manifest, sidecar_path

log = logging.getLogger("edgemri.convert")


@dataclass
class ConversionResult:
    target: str
    status: str  # "ok" | "failed-verification" | "failed"
    path: Path | None = None
    reason: str | None = None
    verification: dict[str, Any] = field(default_factory=dict)
    size_bytes: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "path": str(self.path) if self.path else None}


def missing_modules(target: Target) -> list[str]:
    return [m for m in target.needs if not available(m)]


def convert(run_path: str | os.PathLike[str], targets: list[str], calib: int = DEFAULT_CALIB_IMAGES, opset: int = DEFAULT_OPSET,
            nchw: bool = False, per_tensor: bool = False, verify: bool = True,
            min_agreement: float | None = None, ov_fp16: bool = False, progress: bool = True,
            on_result: Any = None, io: str = DEFAULT_IO) -> list[ConversionResult]:
    """Convert ``run_path``'s model.keras to each target under ``RUN/export/<target>/``."""
    run = RunDir.open(run_path)
    chosen = resolve(targets)
    run.manifest()  # fail early (one line) on a missing or broken manifest
    options = ConvertOptions(calib=calib, opset=opset, nchw=nchw, per_tensor=per_tensor, ov_fp16=ov_fp16,
                             min_agreement=min_agreement, verify=verify, progress=progress, io=io)
    results = []
    with tempfile.TemporaryDirectory(prefix="edgemri-convert-") as work:
        ctx = ConvertContext(run, options, Path(work))
        _ = ctx.keras_model  # a broken model.keras is one error for the whole call, not one per target
        reference = _Reference(ctx) if verify else None
        for target in chosen:
            result = convert_one(ctx, target, reference)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


class _Reference:
    """Val pixels, labels and FP32 probabilities, computed on first use and shared by targets."""

    def __init__(self, ctx: ConvertContext):
        self._ctx = ctx
        self._data: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._qat: np.ndarray | None = None
        self._guard: tuple[dict[str, Any], np.ndarray] | None = None

    def get(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._data is None:
            from edgemri.convert.source import keras_probs, split_arrays

            pixels, labels = split_arrays(self._ctx.run, "val", progress=self._ctx.options.progress)
            if len(pixels) == 0:
                from edgemri.errors import DataError

                raise DataError(f"{self._ctx.run.split_path} has no validation images to verify with",
                                "Re-create the split with a val part, or pass --no-verify")
            ref = keras_probs(self._ctx.keras_model, pixels, self._ctx.manifest.input)
            self._data = (pixels, labels, ref)
        return self._data

    def guard_reference(self) -> tuple[dict[str, Any], np.ndarray]:
        """(OOD reference, which val images pass the image checks): from RUN/calibration.json when
        ``edgemri train``/``calibrate`` wrote it, else summarised from the training images now."""
        if self._guard is None:
            from edgemri.calibrate import build_reference, images_ok, load_reference

            reference = load_reference(self._ctx.run)
            pixels = self.get()[0]
            if reference is None:
                reference, val = build_reference(self._ctx.run)
                self._guard = (reference, val.raw_ok(reference) & images_ok(reference, pixels))
            else:
                self._guard = (reference, images_ok(reference, pixels))
        return self._guard

    def qat(self) -> np.ndarray:
        """Probabilities of the QAT model (``RUN/qat/saved_model``, fake-quant in float).

        An artifact converted from the QAT model is checked against THAT model: QAT fine-tuning
        changes the weights, so disagreeing with the FP32 model is expected and is reported as an
        accuracy change, not as a conversion fault.
        """
        if self._qat is None:
            from edgemri.extras import require
            from edgemri.train.arrays import normalize_batch

            tf = require("tensorflow", "convert", "verifying against the QAT model")
            pixels = self.get()[0]
            serve = tf.saved_model.load(str(self._ctx.run.qat_saved_model)).signatures["serving_default"]
            outs = [serve(tf.constant(normalize_batch(pixels[i:i + 64], self._ctx.manifest.input)))["output_0"]
                    for i in range(0, len(pixels), 64)]
            self._qat = np.concatenate([np.asarray(o) for o in outs]).astype(np.float32)
        return self._qat


def convert_one(ctx: ConvertContext, target: Target, reference: _Reference | None) -> ConversionResult:
    """Convert + verify one target; user-fixable problems become a failed result, not a crash."""
    start = time.perf_counter()
    missing = missing_modules(target)
    if missing:
        extra = EXTRA_OF.get(missing[0], "convert")
        return ConversionResult(target.name, "failed", reason=f"{', '.join(missing)} not installed. "
                                f"{install_hint(extra)}")
    path = target.artifact(ctx.run.export_dir)
    try:
        manifest = target.converter(ctx, path)
        result = ConversionResult(target.name, "ok", path=path)
        if reference is not None:
            result.verification = verify_artifact(ctx, target, path, manifest, reference)
            result.status = result.verification["status"]
            result.reason = result.verification["reason"]
    except EdgemriError as exc:
        log.debug("target %s failed", target.name, exc_info=True)
        _remove_partial(path)
        result = ConversionResult(target.name, "failed", reason=exc.one_line())
    if result.path is not None and result.path.is_file():
        result.size_bytes = artifact_size(result.path)
    result.seconds = round(time.perf_counter() - start, 2)
    return result


def verify_artifact(ctx: ConvertContext, target: Target, path: Path, manifest: Manifest,
                    reference: _Reference) -> dict[str, Any]:
    """Run the val split through the artifact; write verification.json and update the sidecar."""
    from edgemri.convert.verify import artifact_outputs, compare

    pixels, labels, ref = reference.get()
    probs, floor = artifact_outputs(path, pixels)
    min_agree, max_diff = target.thresholds(ctx.options)
    record = {"target": target.name, "artifact": path.name, "reference": "fp32",
              **compare(labels, ref, probs, min_agree, max_diff)}
    if manifest.extra.get("source") == "qat":
        from edgemri.metrics import agreement

        gate = compare(labels, reference.qat(), probs, min_agree, max_diff)
        record.update({k: gate[k] for k in ("status", "reason", "top1_agreement", "max_prob_diff",
                                            "mean_prob_diff")}, reference="qat")
        record["vs_fp32"] = agreement(ref, probs)
    sections = _safety_sections(reference, probs, labels, floor)
    if sections:
        record["calibration"] = {"temperature": sections["calibration"].temperature,
                                 **sections["calibration"].metrics, "msp_threshold": sections["ood"].threshold}
    write_json(path.parent / "verification.json", record)
    summary = {k: record[k] for k in ("status", "images", "accuracy", "fp32_accuracy", "accuracy_delta",
                                      "top1_agreement", "max_prob_diff")}
    sections = {"calibration": None, "ood": None, **sections}  # never the Keras model's
    manifest.replace(extra={**manifest.extra, "verification": summary}, **sections).save(sidecar_path(path))
    return record


def _safety_sections(reference: _Reference, probs: np.ndarray, labels: np.ndarray, floor: float) -> dict[str, Any]:
    """This artifact's own temperature and OOD guard, fitted on its val outputs (issue 17).

    Quantization changes confidence, so an artifact never inherits the Keras model's temperature.
    A failure here (e.g. the training images moved) leaves the artifact uncalibrated, not failed.
    """
    from edgemri.calibrate import calibrate_probs

    try:
        ref, image_ok = reference.guard_reference()
        cal, ood = calibrate_probs(probs, labels, floor, ref, image_ok, f"val ({len(labels)} images)")
    except EdgemriError as exc:
        log.warning("not calibrated: %s", exc.one_line())
        return {}
    return {"calibration": cal, "ood": ood}


def _remove_partial(path: Path) -> None:
    """A failed target leaves no artifact that could be mistaken for a good one."""
    if path.parent.is_dir():
        shutil.rmtree(path.parent, ignore_errors=True)
