"""Image in, labelled probabilities out, through any backend: the runtime's one entry point.

``Predictor.load(path)`` picks the backend that the file's format names (``runtime.formats``), finds
the manifest (sidecar ``<artifact>.json`` first, then the copy embedded in the file), and checks it
against the model's real inputs and outputs, so a model paired with the wrong manifest fails at load
time with one line instead of predicting nonsense. Integer inputs are quantized with the MODEL's own
scale and zero point (the manifest's copy must agree), integer outputs dequantized.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
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
from edgemri.runtime.calibration import apply_temperature, probability_floor
from edgemri.runtime.embed import read_embedded
from edgemri.runtime.guard import Guard, Verdict
from edgemri.runtime.images import load_image
from edgemri.runtime.manifest import InputSpec, Manifest, OutputSpec, Quantization, RuntimeHints, sidecar_path
from edgemri.runtime.preprocess import postprocess, prepare_pixels, to_model_input

Item = str | os.PathLike[str] | np.ndarray


@dataclass
class Prediction:
    """One image's result. ``timings`` are milliseconds: decode, preprocess, inference, postprocess.

    ``probabilities`` are calibrated when the manifest has a temperature; ``verdict`` is the
    out-of-distribution guard's answer (``in_distribution`` None: the manifest has no guard).
    """

    path: str | None
    label: str
    index: int
    probabilities: np.ndarray
    classes: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict)
    verdict: Verdict | None = None

    @property
    def in_distribution(self) -> bool | None:
        return self.verdict.in_distribution if self.verdict else None

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
        if self.verdict is not None:
            out["in_distribution"] = self.verdict.in_distribution
            out["ood_reason"] = self.verdict.reason
        if top:
            out["top"] = [[c, round(p, 6)] for c, p in self.top(top)]
        return out


class Predictor:
    """A loaded model plus its manifest. Build with ``Predictor.load``."""

    runtime: RuntimeChoice | None = None  # how ``load`` chose backend, threads and options (hints)

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
             manifest: Manifest | str | os.PathLike[str] | None = None, *, hints: bool | None = None,
             precision: str | None = None, options: dict[str, Any] | None = None) -> Predictor:
        """Open a .tflite/.onnx/.xml model with its manifest; raise one-line errors on mismatch.

        The manifest's runtime hints (``edgemri tune``) choose the threads and backend options
        unless ``hints=False`` or ``EDGEMRI_HINTS=0``; explicit ``threads``, ``options`` and
        ``precision`` (OpenVINO only) win over them. ``predictor.runtime`` says what was used.
        """
        path = Path(path)
        check_model_file(path)
        if threads is not None and threads < 1:
            raise UsageError(f"threads must be at least 1, not {threads}")
        try:
            found, source = resolve_manifest(path, manifest)
        except ManifestError:
            backend_for(path, backend).load(path, threads)  # a corrupt model file is the error to report first
            raise
        choice = choose_runtime(path, found, backend, threads, options, precision, hints)
        engine, choice = open_backend(path, choice)
        found.check_model_io(engine.input.shape, engine.output.shape, f"{path} with {source}")
        predictor = cls(engine, found, path, source)
        predictor.runtime = choice
        return predictor

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
        out = {**self._backend.info(), "manifest": self.manifest_source,
               "input_spec": dataclasses.asdict(self.input_spec)}
        if self.runtime is not None:
            out["runtime"] = self.runtime.to_dict()
        return out

    # -- inference -----------------------------------------------------------------------------
    def run_raw(self, x: np.ndarray) -> np.ndarray:
        """The backend's raw output for an input already in the model's dtype and layout."""
        return self._backend.run(x)

    @functools.cached_property
    def temperature(self) -> float:
        """The manifest's fitted temperature (1.0 without a calibration section)."""
        cal = self.manifest.calibration
        return float(cal.temperature) if cal is not None else 1.0

    @functools.cached_property
    def guard(self) -> Guard:
        """The out-of-distribution guard of the manifest's ``ood`` section (off without one)."""
        return Guard(self.manifest.ood)

    def calibrate(self, probs: np.ndarray) -> np.ndarray:
        """Raw postprocessed probabilities -> temperature-scaled ones (identity at T = 1)."""
        return apply_temperature(probs, self.temperature, "probabilities", probability_floor(self.output_spec))

    def predict_pixels(self, pixels: np.ndarray, batch_size: int = 32, calibrated: bool = False) -> np.ndarray:
        """Prepared uint8 pixels (N, H, W, C) -> probabilities (N, classes) float32.

        Runs per image when the model is frozen to batch 1, else in chunks of ``batch_size``.
        By default the model's own probabilities: what conversion verification and the bench's
        agreement with FP32 compare (a temperature is not a conversion error). ``calibrated=True``
        applies the manifest's temperature, as ``predict_one``/``predict`` always do.
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
        probs = np.concatenate(outs, axis=0)
        return self.calibrate(probs) if calibrated else probs

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
        pixels = prepare_pixels(arr, self.input_spec)
        x = to_model_input(pixels, self.input_spec)
        t2 = time.perf_counter()
        raw = self.run_raw(x)
        t3 = time.perf_counter()
        probs = self.calibrate(postprocess(raw, self.output_spec))[0]
        verdict = self.guard.check(arr, pixels, probs)
        index = int(np.argmax(probs))
        t4 = time.perf_counter()  # postprocess: dequantize, softmax, temperature and the OOD guard
        timings = {"decode": (t1 - t0) * 1e3 if path else 0.0, "preprocess": (t2 - t1) * 1e3,
                   "inference": (t3 - t2) * 1e3, "postprocess": (t4 - t3) * 1e3}
        return Prediction(path, self.classes[index], index, probs, self.classes, timings, verdict)

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


# -- runtime hints (issue 14): which backend, threads and options a model runs with ---------------
HINTS_ENV = "EDGEMRI_HINTS"
_ENV_BOOL = {"0": False, "false": False, "off": False, "no": False, "1": True, "true": True, "on": True, "yes": True}
log = logging.getLogger("edgemri.runtime")


@dataclass(frozen=True)
class RuntimeChoice:
    """How a Predictor runs its model and why: the manifest's hints, minus what overrode them.

    ``hints`` says what happened to them ("used", "off: --no-hints", "none in the manifest", ...);
    ``options`` are the backend options asked for (the backend fills in engine defaults).
    """

    backend: str
    threads: int | None
    options: dict[str, Any]
    hints: str
    fallback: RuntimeChoice | None = None  # the defaults, when the hints chose something
    tuned_elsewhere: str | None = None  # the CPU the used hints were tuned on, when it is not this one

    def to_dict(self) -> dict[str, Any]:
        out = {"backend": self.backend, "threads": self.threads, "options": dict(self.options),
               "hints": self.hints}
        if self.tuned_elsewhere:
            out["tuned_on"] = self.tuned_elsewhere
        return out


def hints_enabled(flag: bool | None) -> tuple[bool, str]:
    """(use the hints?, why): an explicit flag wins, then ``EDGEMRI_HINTS``, then on."""
    if flag is not None:
        return flag, "" if flag else "off: --no-hints"
    raw = os.environ.get(HINTS_ENV, "").strip().lower()
    if not raw:
        return True, ""
    if raw not in _ENV_BOOL:
        raise UsageError(f"{HINTS_ENV}={os.environ[HINTS_ENV]!r} is not valid", "Use 0 (ignore the hints) or 1")
    return _ENV_BOOL[raw], "" if _ENV_BOOL[raw] else f"off: {HINTS_ENV}=0"


def choose_runtime(path: Path, manifest: Manifest, backend: str | None = None, threads: int | None = None,
                   options: dict[str, Any] | None = None, precision: str | None = None,
                   hints: bool | None = None) -> RuntimeChoice:
    """The backend, threads and options to load ``path`` with.

    The manifest's ``runtime`` hints fill in what the caller left open: explicit ``backend``,
    ``threads``, ``options`` and ``precision`` win. Hints that cannot apply here (an unknown
    backend or option, a value this edgemri does not accept, a precision) are dropped with a
    warning, never an error: the model still runs, on its defaults. Bad *explicit* values are
    a ``UsageError``.
    """
    from edgemri.runtime.backends import BACKENDS

    default = backend_for(path, backend)
    explicit = dict(options or {})
    if precision is not None:
        if "precision" not in {o.name for o in default.OPTIONS}:
            raise UsageError(f"--precision applies to OpenVINO models only; {path.name} runs on {default.name}",
                             "Leave --precision out (this backend computes float models in float32)")
        explicit["precision"] = precision
    default.check_options(explicit)
    use, why = hints_enabled(hints)
    if manifest.runtime is None or not use:
        return RuntimeChoice(default.name, threads, explicit, why or "none")
    hint = manifest.runtime.for_cpu(*_this_cpu())
    name = hint.backend or default.name
    if backend is not None and name != default.name:
        return RuntimeChoice(default.name, threads, explicit, f"not used: tuned for {name}, --backend {backend}")
    if name not in BACKENDS.names():
        log.warning("runtime hints of %s name backend %r, which this edgemri does not have; running on %s "
                    "with its defaults", path, name, default.name)
        return RuntimeChoice(default.name, threads, explicit, f"ignored: unknown backend {name!r}")
    cls = BACKENDS.get(name)
    hinted = {**_usable_hint_options(cls, hint.options, path), **explicit}
    n_threads = threads if threads is not None else _hint_threads(hint.threads, path)
    plain = RuntimeChoice(default.name, threads, explicit, "ignored: the hinted configuration did not load")
    return RuntimeChoice(name, n_threads, hinted, "used", fallback=plain, tuned_elsewhere=_other_cpu(hint))


def _other_cpu(hint: RuntimeHints) -> str | None:
    """The CPU model the chosen hints were measured on, when it is not this machine's.

    The winner depends on the CPU: hints from another CPU still run (when the manifest has none
    for this one), but the user is told that ``edgemri tune`` here may pick something faster.
    """
    return hint.machine_label if hint.cpu and not hint.tuned_on(*_this_cpu()) else None


@functools.lru_cache(maxsize=1)
def _this_cpu() -> tuple[str, str | None]:
    """This CPU's model name and instruction-set tier: what hints are matched on."""
    from edgemri.bench.machine import cpu_isa, cpu_model

    return cpu_model().strip(), cpu_isa()


def _usable_hint_options(cls: type[Backend], options: Any, path: Path) -> dict[str, Any]:
    """The hint's options this backend accepts; the rest are dropped with a warning each."""
    known = {o.name: o for o in cls.OPTIONS}
    usable: dict[str, Any] = {}
    for key, value in (options or {}).items() if isinstance(options, dict) else ():
        option = known.get(key)
        if option is None or not option.tuned or not option.accepts(value):
            why = "not an option of" if option is None else \
                "not tunable (opt in explicitly) on" if not option.tuned else "not a valid value for"
            log.warning("runtime hint %s=%r of %s is %s the %s backend; ignored", key, value, path, why, cls.name)
            continue
        usable[key] = value
    return usable


def _hint_threads(value: Any, path: Path) -> int | None:
    """The hint's thread count, at most this machine's usable cores (it may have been tuned on a bigger one)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        log.warning("runtime hint threads=%r of %s is not a positive integer; ignored", value, path)
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or value
    return min(value, cores)


def open_backend(path: Path, choice: RuntimeChoice) -> tuple[Backend, RuntimeChoice]:
    """Load the chosen configuration; when the hints' choice cannot load, warn and load the defaults."""
    from edgemri.errors import EdgemriError
    from edgemri.runtime.backends import BACKENDS

    try:
        return BACKENDS.get(choice.backend).load(path, choice.threads, **choice.options), choice
    except EdgemriError as exc:
        if choice.fallback is None:
            raise
        log.warning("%s: the runtime hints (%s, threads %s, options %s) did not load (%s); running on the "
                    "defaults", path, choice.backend, choice.threads, choice.options, exc.one_line())
        plain = choice.fallback
        return BACKENDS.get(plain.backend).load(path, plain.threads, **plain.options), plain


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
