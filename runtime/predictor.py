"""Image in, labelled probabilities out, through any backend: the runtime's one entry point.

``Predictor.load(path)`` picks the backend that the file's format names (``runtime.formats``), finds
the manifest (sidecar ``<artifact>.json`` first, then the copy embedded in the file), and checks it
against the model's real inputs and outputs, so a model paired with the wrong manifest fails at load
time with one line instead of predicting nonsense. Integer inputs are quantized with the MODEL's own
scale and zero point (the manifest's copy must agree), integer outputs dequantized.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgemri.errors import ManifestError, ModelFileError, UsageError
from edgemri.runtime.backends import Backend, TensorInfo, backend_for
from edgemri.runtime.backends.base import check_model_file
from edgemri.runtime.embed import read_embedded
from edgemri.runtime.images import load_image
from edgemri.runtime.manifest import InputSpec, Manifest, OutputSpec, Quantization, sidecar_path
from edgemri.runtime.preprocess import postprocess, prepare_pixels, to_model_input

Item = str | os.PathLike[str] | np.ndarray


@dataclass
class Prediction:
    """One image's result. ``timings`` are milliseconds: decode, preprocess, inference."""

    path: str | None
    label: str
    index: int
    probabilities: np.ndarray
    classes: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.index])

    def top(self, k: int = 1) -> list[tuple[str, float]]:
        order = np.argsort(-self.probabilities, kind="stable")[: max(1, k)]
        return [(self.classes[i], float(self.probabilities[i])) for i in order]

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path, "label": self.label, "index": self.index,
            "confidence": round(self.confidence, 6),
            "probabilities": {c: round(float(p), 6) for c, p in zip(self.classes, self.probabilities)},
            "timings_ms": {k: round(v, 3) for k, v in self.timings.items()},
        }
        if top:
            out["top"] = [[c, round(p, 6)] for c, p in self.top(top)]
        return out


class Predictor:
    """A loaded model plus its manifest. Build with ``Predictor.load``."""

    def __init__(self, backend: Backend, manifest: Manifest, path: Path, manifest_source: str):
        self._backend = backend
        self.manifest = manifest
        self.path = path
        self.manifest_source = manifest_source
        self.input_spec = _effective_input(manifest.input, backend.input, str(path))
        self.output_spec = _effective_output(manifest.output, backend.output, str(path))

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str], threads: int | None = None, backend: str | None = None,
             manifest: Manifest | str | os.PathLike[str] | None = None) -> Predictor:
        """Open a .tflite/.onnx/.xml model with its manifest; raise one-line errors on mismatch."""
        path = Path(path)
        check_model_file(path)
        if threads is not None and threads < 1:
            raise UsageError(f"threads must be at least 1, not {threads}")
        engine = backend_for(path, backend).load(path, threads)
        found, source = resolve_manifest(path, manifest)
        found.check_model_io(engine.input.shape, engine.output.shape, f"{path} with {source}")
        return cls(engine, found, path, source)

    # -- properties ----------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def engine(self) -> Backend:
        return self._backend

    @property
    def classes(self) -> tuple[str, ...]:
        return self.manifest.classes

    def info(self) -> dict[str, Any]:
        return {**self._backend.info(), "manifest": self.manifest_source,
                "input_spec": dataclasses.asdict(self.input_spec)}

    # -- inference -----------------------------------------------------------------------------
    def run_raw(self, x: np.ndarray) -> np.ndarray:
        """The backend's raw output for an input already in the model's dtype and layout."""
        return self._backend.run(x)

    def predict_pixels(self, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Prepared uint8 pixels (N, H, W, C) -> probabilities (N, classes) float32.

        Runs per image when the model is frozen to batch 1, else in chunks of ``batch_size``.
        """
        if pixels.ndim == 3:
            pixels = pixels[None]
        spec = self.input_spec
        if pixels.dtype != np.uint8 or pixels.shape[1:] != (spec.height, spec.width, spec.channels):
            raise ManifestError(
                f"predict_pixels needs uint8 (N, {spec.height}, {spec.width}, {spec.channels}) pixels, "
                f"got {pixels.dtype} {pixels.shape}",
                "Prepare images with edgemri.runtime.preprocess.prepare_pixels(arr, manifest.input)",
            )
        fixed = self._backend.input.fixed_batch
        step = fixed if fixed else max(1, batch_size)
        outs = []
        for start in range(0, len(pixels), step):
            chunk = pixels[start:start + step]
            raw = self.run_raw(to_model_input(chunk, spec))
            outs.append(postprocess(raw, self.output_spec))
        if not outs:
            return np.zeros((0, self.manifest.num_classes), dtype=np.float32)
        return np.concatenate(outs, axis=0)

    def predict_one(self, item: Item) -> Prediction:
        """One image path or canonical uint8 array -> Prediction with per-stage timings."""
        t0 = time.perf_counter()
        path = None
        if isinstance(item, (str, os.PathLike)):
            path = str(item)
            arr = load_image(item)
        else:
            arr = np.asarray(item)
        t1 = time.perf_counter()
        x = to_model_input(prepare_pixels(arr, self.input_spec), self.input_spec)
        t2 = time.perf_counter()
        raw = self.run_raw(x)
        t3 = time.perf_counter()
        probs = postprocess(raw, self.output_spec)[0]
        index = int(np.argmax(probs))
        timings = {"decode": (t1 - t0) * 1e3 if path else 0.0, "preprocess": (t2 - t1) * 1e3,
                   "inference": (t3 - t2) * 1e3}
        return Prediction(path, self.classes[index], index, probs, self.classes, timings)

    def predict(self, items: Iterable[Item]) -> list[Prediction]:
        """Predict each item (paths or arrays); a bad image raises ImageDecodeError naming it."""
        return [self.predict_one(item) for item in items]

    def warmup(self, n: int = 1) -> None:
        """Run ``n`` inferences on a blank image so first-call costs (allocation, JIT) are paid."""
        spec = self.input_spec
        pixels = np.zeros((1, spec.height, spec.width, spec.channels), dtype=np.uint8)
        x = to_model_input(pixels, spec)
        for _ in range(max(0, n)):
            self.run_raw(x)


# -- manifest resolution and reconciliation -----------------------------------------------------
def resolve_manifest(path: Path, manifest: Manifest | str | os.PathLike[str] | None) -> tuple[Manifest, str]:
    """(manifest, where it came from): explicit, else sidecar ``<artifact>.json``, else embedded."""
    if isinstance(manifest, Manifest):
        return manifest, "the given manifest"
    if manifest is not None:
        return Manifest.load(manifest), f"manifest {manifest}"
    sidecar = sidecar_path(path)
    if sidecar.is_file():
        return Manifest.load(sidecar), f"sidecar {sidecar.name}"
    embedded = read_embedded(path)
    if embedded is not None:
        return embedded, "embedded manifest"
    raise ManifestError(
        f"{path} has no manifest: no sidecar {sidecar.name} and none embedded in the file",
        f"Put the manifest written by `edgemri convert` next to it as {sidecar.name}, or pass --manifest",
    )


def _same_quant(a: Quantization, b: Quantization) -> bool:
    return a.zero_point == b.zero_point and math.isclose(a.scale, b.scale, rel_tol=1e-5, abs_tol=1e-12)


def _effective_input(spec: InputSpec, model: TensorInfo, source: str) -> InputSpec:
    """The manifest's input spec with the model's own dtype and quantization (they must agree)."""
    if model.dtype not in ("float32", "int8", "uint8"):
        raise ModelFileError(f"{source}: model input dtype {model.dtype} is not supported",
                             "Export with a float32, int8 or uint8 input")
    if spec.dtype != model.dtype:
        raise ManifestError(f"{source}: model input is {model.dtype} but the manifest says {spec.dtype}",
                            "Use the manifest exported with this model (edgemri convert writes <artifact>.json)")
    quant = model.quantization or spec.quantization
    if model.dtype != "float32":
        if quant is None:
            raise ManifestError(f"{source}: {model.dtype} input has no quantization parameters")
        _check_same_quant("input", spec.quantization, model.quantization, source)
    return dataclasses.replace(spec, quantization=quant if model.dtype != "float32" else None)


def _check_same_quant(where: str, manifest_q: Any, model_q: Any, source: str) -> None:
    """A manifest whose quantization disagrees with the model's would silently skew every input."""
    if manifest_q and model_q and not _same_quant(manifest_q, model_q):
        raise ManifestError(
            f"{source}: manifest {where} quantization {manifest_q.to_dict()} disagrees with the "
            f"model's {model_q.to_dict()}",
            "Use the manifest exported with this model (edgemri convert writes <artifact>.json)",
        )


def _effective_output(spec: OutputSpec, model: TensorInfo, source: str) -> OutputSpec:
    """The manifest's output spec with the model's own dtype and quantization."""
    if model.dtype == "float32":
        return dataclasses.replace(spec, dtype="float32", quantization=None)
    if model.dtype not in ("int8", "uint8"):
        raise ModelFileError(f"{source}: model output dtype {model.dtype} is not supported")
    quant = model.quantization or spec.quantization
    if quant is None:
        raise ManifestError(f"{source}: {model.dtype} output has no quantization parameters")
    _check_same_quant("output", spec.quantization, model.quantization, source)
    return dataclasses.replace(spec, dtype=model.dtype, quantization=quant)
