"""Shared state of one ``edgemri convert`` call: options, the run, and things computed once.

Several targets need the same SavedModel export, the same Keras model and the same calibration
images; the context computes each lazily the first time a target asks and reuses it after.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgemri.convert.calibration import DEFAULT_CALIB_IMAGES, CalibrationSet
from edgemri.convert.targets import DEFAULT_IO, IO_TYPES  # noqa: F401 - re-exported
from edgemri.rundir import RunDir
from edgemri.runtime.manifest import Manifest

DEFAULT_OPSET = 17


@dataclass(frozen=True)
class ConvertOptions:
    calib: int = DEFAULT_CALIB_IMAGES
    opset: int = DEFAULT_OPSET
    nchw: bool = False
    per_tensor: bool = False
    ov_fp16: bool = False
    min_agreement: float | None = None  # overrides every target's own threshold
    verify: bool = True
    seed: int = 0
    progress: bool = True
    io: str = DEFAULT_IO  # full-integer TFLite targets' input/output type (IO_TYPES)


class ConvertContext:
    """Lazily computed inputs of the converters, shared across targets."""

    def __init__(self, run: RunDir, options: ConvertOptions, workdir: Path):
        self.run = run
        self.options = options
        self.workdir = workdir
        self.manifest: Manifest = run.manifest()

    @functools.cached_property
    def keras_model(self) -> Any:
        from edgemri.convert.source import load_keras_model

        return load_keras_model(self.run.model)

    @functools.cached_property
    def saved_model(self) -> Path:
        """The FP32 model as a SavedModel with an explicit input signature (exported once)."""
        from edgemri.convert.source import export_saved_model

        return export_saved_model(self.keras_model, self.manifest.input, self.workdir / "saved_model")

    @functools.cached_property
    def onnx_fp32(self) -> Any:
        """The FP32 model as an ONNX ModelProto (converted once; onnx-int8 quantizes it)."""
        from edgemri.convert.onnx_export import export_fp32_onnx

        return export_fp32_onnx(self)

    @functools.cached_property
    def calibration(self) -> CalibrationSet:
        """Stratified train images as float32 NHWC model inputs (see calibration.py)."""
        from edgemri.convert.calibration import calibration_set

        return calibration_set(self.run, self.options.calib, seed=self.options.seed,
                                  progress=self.options.progress)


def exc_summary(exc: BaseException, limit: int = 300) -> str:
    """One line from a library exception: TF/MLIR errors start with "in user code:" and put the
    real message last, others put it first."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    line = lines[-1] if lines[0].endswith(":") else lines[0]
    return f"{type(exc).__name__}: {line}"[:limit]
