"""``edgemri tune ARTIFACT|RUN``: the fastest runtime configuration of each artifact, on this machine.

Why: the engine's default is not the fastest everywhere. LiteRT's XNNPACK delegate made a 9x9
depthwise ConvMixer int8 model 14x slower than the builtin kernels on x86 (issue 14), ONNX Runtime
and OpenVINO have settings whose best value depends on the model and the CPU. So every
configuration a backend declares (``Backend.configurations``: its tuned ``OPTIONS`` x thread
counts) is measured (batch 1, p50 of ``runs`` after ``warmup``), its outputs are checked against
the default configuration on a few images (top-1 agreement and max probability difference, the
same gate idea as conversion's verification), and the fastest one that matches is recorded as
the manifest's ``runtime`` hints (sidecar, and the embedded copy re-written with the format's
writer). ``edgemri predict``, ``Predictor.load`` and bundles then use the hints by default.

Precision is never tuned: a configuration that computes less exactly is the user's opt-in
(``--precision``), not a silent win. Everything runs in this process (latency only; memory and
cold start are ``edgemri bench``'s); the figures are for this machine, named in ``measured``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgemri.errors import DataError, EdgemriError, UsageError
from edgemri.runtime.manifest import Manifest, RuntimeHints, sidecar_path

log = logging.getLogger("edgemri.tune")

TUNE_FILE = "tune.json"  # beside the artifact: every configuration measured (the winner and the losers)
# 50 runs after 5 warm-ups: at 20 after 3, the winner among sub-millisecond configurations changed
# from one tuning to the next on the same idle machine (1 vs 2 threads); edgemri bench's protocol
DEFAULT_RUNS = 50
DEFAULT_WARMUP = 5
DEFAULT_IMAGES = 8
DEFAULT_MIN_AGREEMENT = 0.98
#: max probability difference to the default configuration, as conversion's verification gates:
#: float artifacts must compute the same numbers (summation order only); quantized ones are gated
#: on top-1 agreement only (XNNPACK and the builtin int8 kernels round requantization differently:
#: brain4-convmixer-edge PTQ differed by up to 0.076 in a probability, with 100% top-1 agreement)
MAX_PROB_DIFF: dict[str, float | None] = {"float": 1e-3, "quantized": None}


@dataclass
class Candidate:
    """One configuration's figures. ``status``: ok, mismatch (outputs differ), failed (did not load/run)."""

    threads: int
    options: dict[str, Any]
    default: bool = False
    p50_ms: float | None = None
    p90_ms: float | None = None
    top1_agreement: float | None = None
    max_prob_diff: float | None = None
    status: str = "ok"
    reason: str | None = None
    winner: bool = False

    def label(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items()) or "engine defaults"
        return f"{self.threads} thread{'s' if self.threads > 1 else ''}, {opts}"

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key in ("p50_ms", "p90_ms"):
            out[key] = None if out[key] is None else round(out[key], 4)
        return out


@dataclass
class TuneResult:
    """Everything tune found for one artifact (written as ``tune.json`` beside it)."""

    path: Path
    backend: str
    kind: str  # float | quantized
    candidates: list[Candidate] = field(default_factory=list)
    measured: dict[str, Any] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)

    @property
    def winner(self) -> Candidate | None:
        return next((c for c in self.candidates if c.winner), None)

    def to_dict(self) -> dict[str, Any]:
        winner = self.winner
        return {"schema": "edgemri.tune", "version": 1, "path": str(self.path), "backend": self.backend,
                "kind": self.kind, "winner": winner.to_dict() if winner else None,
                "candidates": [c.to_dict() for c in self.candidates], "measured": self.measured,
                "written": self.written}


# -- what to tune ------------------------------------------------------------------------------
def default_threads() -> list[int]:
    """1..N, N = this machine's usable cores (at most 4: more rarely helps a batch-1 model)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return list(range(1, min(cores, 4) + 1))


def artifacts_of(target: Path) -> list[Path]:
    """A model file as given, or every artifact under ``RUN/export/<target>/``."""
    from edgemri.bench.inputs import find_artifact
    from edgemri.runtime.formats import format_for_path

    if target.is_file():
        format_for_path(target, having="backend")  # an unrunnable file is a one-line error
        return [target]
    export = target / "export"
    if not target.is_dir():
        raise UsageError(f"{target} is neither a model file nor a run directory")
    found = [a for d in sorted(export.iterdir()) if d.is_dir() and (a := find_artifact(d)) is not None] \
        if export.is_dir() else []
    if not found:
        raise DataError(f"{target} has no artifacts under export/",
                        f"Convert first: edgemri convert {target} --target tflite-int8")
    return found


def run_of(artifact: Path) -> Path | None:
    """The run directory an artifact was exported into (``RUN/export/<target>/model.x``), if any."""
    root = artifact.resolve().parents[2] if len(artifact.resolve().parents) > 2 else None
    return root if root is not None and (root / "split.json").is_file() else None


def tuning_pixels(artifact: Path, manifest: Manifest, n_images: int) -> tuple[np.ndarray, str]:
    """Prepared uint8 pixels for the agreement check: the run's val split, else synthetic images."""
    from edgemri.runtime.preprocess import prepare_pixels

    spec = manifest.input
    run = run_of(artifact)
    if run is not None:
        paths = _split_paths(run, n_images)
        if paths:
            from edgemri.runtime.images import load_image

            return np.stack([prepare_pixels(load_image(p), spec) for p in paths]), f"split:val of {run}"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:spec.height, 0:spec.width]
    images = []
    for i in range(n_images):  # smooth blobs plus noise: varied predictions, deterministic
        blob = 128 + 100 * np.sin(yy / (3.0 + i)) * np.cos(xx / (2.0 + 0.5 * i))
        noisy = blob + rng.normal(0, 20, blob.shape)
        images.append(prepare_pixels(np.clip(noisy, 0, 255).astype(np.uint8), spec))
    return np.stack(images), "synthetic"


def _split_paths(run: Path, n_images: int) -> list[str]:
    from edgemri.bench.inputs import _absolute, subsample
    from edgemri.data.split import Split

    try:
        split = Split.load(run / "split.json")
        root = Path(getattr(split, "root", "") or "")
        samples = sorted((_absolute(s, root) for s in split.samples("val")), key=lambda s: str(s.path))
    except (EdgemriError, OSError, ValueError, KeyError) as exc:
        log.warning("cannot read the val split of %s (%s); tuning on synthetic images", run, exc)
        return []
    return [str(s.path) for s in subsample(samples, n_images) if Path(s.path).is_file()]


def artifact_kind(manifest: Manifest) -> str:
    """quantized (int I/O, or a quantized conversion target) or float: decides the output tolerance."""
    if manifest.input.dtype != "float32" or manifest.output.dtype != "float32":
        return "quantized"
    from edgemri.convert.targets import TARGETS

    target = str(manifest.provenance.get("target") or "")
    return "quantized" if target in TARGETS.names() and TARGETS.get(target).quantized else "float"


# -- measuring -----------------------------------------------------------------------------------
def probabilities(predictor: Any, pixels: np.ndarray) -> np.ndarray:
    """Batch-1 probabilities on every prepared image (converted models often have a fixed batch)."""
    return np.concatenate([predictor.predict_pixels(pixels[i:i + 1]) for i in range(len(pixels))])


def measure_candidates(path: Path, candidates: list[Candidate], pixels: np.ndarray,
                       reference: np.ndarray | None, runs: int, warmup: int, max_prob_diff: float | None,
                       min_agreement: float) -> None:
    """Load every configuration, time them (bare invoke on one prepared image), compare; in place.

    Each configuration is timed in ``PASSES`` blocks interleaved with the others' (each block
    after its own warm-up), so a burst of other work on a shared machine lands on every
    configuration rather than deciding the winner; within a block the model runs alone, as it will.
    """
    from edgemri.bench.measure import repeat_ms, summarize

    loaded = [(c, *_load(path, c, pixels)) for c in candidates]
    live = [(c, predictor, x) for c, predictor, x in loaded if predictor is not None]
    times: dict[int, list[float]] = {id(c): [] for c, _, _ in live}
    for block in _blocks(runs):
        for cand, predictor, x in live:
            times[id(cand)] += repeat_ms(lambda i, p=predictor, x=x: p.run_raw(x), block, warmup)
    for cand, predictor, _ in live:
        stats = summarize(times[id(cand)])
        cand.p50_ms, cand.p90_ms = stats["p50"], stats["p90"]
        if reference is not None:
            check_outputs(cand, reference, probabilities(predictor, pixels), max_prob_diff, min_agreement)


PASSES = 2


def _blocks(runs: int) -> list[int]:
    """``runs`` split into ``PASSES`` blocks (one block when there are too few runs to split)."""
    n = PASSES if runs >= 2 * PASSES else 1
    return [runs // n + (1 if i < runs % n else 0) for i in range(n)]


def _load(path: Path, cand: Candidate, pixels: np.ndarray) -> tuple[Any, Any]:
    """(predictor, model input) for one configuration; (None, None) and a failed status when it will not load."""
    from edgemri.runtime.predictor import Predictor
    from edgemri.runtime.preprocess import to_model_input

    try:
        predictor = Predictor.load(path, threads=cand.threads, options=cand.options, hints=False)
        return predictor, to_model_input(pixels[:1], predictor.input_spec)
    except EdgemriError as exc:
        cand.status, cand.reason = "failed", exc.one_line()
        return None, None


def check_outputs(cand: Candidate, reference: np.ndarray, probs: np.ndarray, max_prob_diff: float | None,
                  min_agreement: float) -> None:
    """The verification gate against the default configuration: top-1 agreement, and for float
    artifacts the max probability difference (int8 kernels may round differently, as conversion's
    verification allows for quantized targets)."""
    from edgemri.metrics import agreement

    agree = agreement(reference, probs)
    cand.top1_agreement, cand.max_prob_diff = agree["top1_agreement"], agree["max_prob_diff"]
    problems = []
    if agree["top1_agreement"] < min_agreement:
        problems.append(f"top-1 agreement {agree['top1_agreement']:.3f} < {min_agreement}")
    if max_prob_diff is not None and agree["max_prob_diff"] > max_prob_diff:
        problems.append(f"max |dp| {agree['max_prob_diff']:.2e} > {max_prob_diff:g}")
    if problems:
        cand.status, cand.reason = "mismatch", "; ".join(problems)


def tune_artifact(path: Path, threads: list[int], runs: int = DEFAULT_RUNS, warmup: int = DEFAULT_WARMUP,
                  n_images: int = DEFAULT_IMAGES, min_agreement: float = DEFAULT_MIN_AGREEMENT,
                  write: bool = True) -> TuneResult:
    """Measure every configuration of one artifact; record the fastest matching one (``write``)."""
    from edgemri.runtime.backends import backend_for
    from edgemri.runtime.predictor import Predictor

    base = Predictor.load(path, threads=threads[0], hints=False)  # the default configuration
    manifest, backend = base.manifest, backend_for(path)
    kind = artifact_kind(manifest)
    pixels, source = tuning_pixels(path, manifest, n_images)
    reference = probabilities(base, pixels)
    info = base.engine.info()
    engine = {"engine": info.get("engine"), "versions": info.get("versions")}
    del base
    result = TuneResult(path, backend.name, kind)
    defaults = {o.name: o.engine_default for o in backend.OPTIONS if o.tuned}
    result.candidates = [Candidate(n, options, default=options == defaults)
                         for n, options in backend.configurations(threads)]
    measure_candidates(path, result.candidates, pixels, reference, runs, warmup, MAX_PROB_DIFF[kind],
                       min_agreement)
    pick_winner(result.candidates)
    result.measured = measured_record(result, runs, warmup, len(pixels), source, min_agreement,
                                      MAX_PROB_DIFF[kind], engine)
    if write and result.winner is not None:
        result.written = write_hints(path, hints_from(result))
        from edgemri.atomic import write_json

        write_json(path.parent / TUNE_FILE, result.to_dict())
        result.written.append(str(path.parent / TUNE_FILE))
    return result


def pick_winner(candidates: list[Candidate]) -> None:
    """The fastest matching configuration (ties: fewer threads, then the default) is the winner."""
    ok = [c for c in candidates if c.status == "ok" and c.p50_ms is not None]
    if ok:
        min(ok, key=lambda c: (c.p50_ms, c.threads, not c.default)).winner = True


def measured_record(result: TuneResult, runs: int, warmup: int, n_images: int, source: str,
                    min_agreement: float, max_prob_diff: float | None, engine: dict[str, Any]) -> dict[str, Any]:
    """Where and how the hints won: the machine, the protocol, the winner's and the default's p50."""
    from edgemri import __version__
    from edgemri.bench.machine import describe_machine

    machine = describe_machine()
    winner = result.winner
    default = next((c for c in result.candidates if c.default and c.threads == (winner.threads if winner else 1)
                    and c.p50_ms), None)
    return {
        "machine": {k: machine.get(k) for k in ("cpu", "isa", "arch", "cores", "cores_usable")},
        "p50_ms": round(winner.p50_ms, 4) if winner and winner.p50_ms else None,
        "default_p50_ms": round(default.p50_ms, 4) if default and default.p50_ms else None,
        "protocol": f"batch 1, p50 of {runs} bare invokes in {len(_blocks(runs))} interleaved blocks, "
                    f"{warmup} warm-up each",
        "agreement": {"images": n_images, "inputs": source, "min_top1_agreement": min_agreement,
                      "max_prob_diff": max_prob_diff},
        "candidates": len(result.candidates),
        "tuned": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "engine": engine.get("engine"),
        "versions": {"edgemri": __version__, **(engine.get("versions") or {})},
    }


def hints_from(result: TuneResult) -> RuntimeHints:
    winner = result.winner
    assert winner is not None
    return RuntimeHints(backend=result.backend, threads=winner.threads, options=dict(winner.options),
                        measured=result.measured)


# -- writing the hints -----------------------------------------------------------------------------
def write_hints(path: Path, hints: RuntimeHints) -> list[str]:
    """The hints into the sidecar and, where the file embeds a manifest, into the file; paths written.

    Hints the artifact already carries for other CPU models are kept (``RuntimeHints.machines``):
    tuning on an AMD box does not throw away what an Intel box measured.
    """
    from edgemri.convert.artifacts import update_sections
    from edgemri.runtime.embed import read_embedded

    sidecar = sidecar_path(path)
    current = Manifest.load(sidecar) if sidecar.is_file() else read_embedded(path)
    if current is not None and current.runtime is not None:
        hints = current.runtime.merged_with(hints)
    return update_sections(path, runtime=hints)


def read_tuning(artifact: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``tune.json`` beside an artifact (what ``edgemri bench`` reports), or None."""
    import json

    path = Path(artifact).parent / TUNE_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    same = isinstance(data, dict) and Path(str(data.get("path", ""))).name == Path(artifact).name
    return data if same else None


# -- the command ---------------------------------------------------------------------------------
def tune(target: str | os.PathLike[str], threads: list[int] | None = None, runs: int = DEFAULT_RUNS,
         warmup: int = DEFAULT_WARMUP, n_images: int = DEFAULT_IMAGES,
         min_agreement: float = DEFAULT_MIN_AGREEMENT, write: bool = True) -> list[TuneResult]:
    """Tune one artifact or every artifact of a run."""
    threads = list(threads or default_threads())
    check_settings(threads, runs, warmup, n_images, min_agreement)
    return [tune_artifact(a, threads, runs, warmup, n_images, min_agreement, write)
            for a in artifacts_of(Path(target))]


def check_settings(threads: list[int], runs: int, warmup: int, n_images: int, min_agreement: float) -> None:
    from edgemri.runtime.backends.litert import XNNPACK_ENV, xnnpack_env

    if not threads or any(t < 1 for t in threads):
        raise UsageError("--threads needs positive integers, e.g. --threads 1,2")
    if runs < 1 or warmup < 0 or n_images < 1:
        raise UsageError("--runs and --images must be at least 1, --warmup at least 0")
    if not 0.0 <= min_agreement <= 1.0:
        raise UsageError(f"--min-agreement is a fraction between 0 and 1, not {min_agreement}")
    if xnnpack_env() is not None:
        raise UsageError(f"{XNNPACK_ENV} is set: it overrides the xnnpack setting tune compares",
                         f"Unset {XNNPACK_ENV} to tune")


def table_rows(result: TuneResult) -> list[list[str]]:
    """One row per configuration, fastest first: the winner, then the losers and why they lost."""
    fewest = min((c.threads for c in result.candidates), default=1)
    default = next((c.p50_ms for c in result.candidates if c.default and c.threads == fewest), None)

    def fmt(v: float | None, d: int = 2) -> str:
        return "–" if v is None else f"{v:.{d}f}"

    rows = []
    order = sorted(result.candidates, key=lambda c: (c.p50_ms is None, c.p50_ms or 0.0))
    for c in order:
        speed = f"{default / c.p50_ms:.2f}x" if default and c.p50_ms else "–"
        status = "WINNER" if c.winner else c.status if c.status != "ok" else "slower"
        rows.append([c.label() + (" (default)" if c.default else ""), fmt(c.p50_ms), fmt(c.p90_ms), speed,
                     fmt(None if c.top1_agreement is None else 100 * c.top1_agreement, 1),
                     "–" if c.max_prob_diff is None else f"{c.max_prob_diff:.1e}", status, c.reason or ""])
    return rows


TABLE_HEADER = ["configuration", "p50 ms", "p90 ms", "speed vs default (fewest threads)", "top-1 agree %", "max |Δp|",
                "result", "why"]
