"""Measure ONE model in its own process: ``python -m edgemri.bench.worker --spec JSON [--out FILE]``.

Why a process per model: peak RSS, import and load times are only honest when nothing else was
loaded before (TensorFlow alone is hundreds of MiB), and a backend that crashes takes down only
its own row. The parent (``edgemri.bench.run``) passes a spec::

    {"name": "tflite-int8", "kind": "artifact" | "keras", "path": ".../model.tflite",
     "manifest": ".../manifest.json" (keras only), "images": [paths], "threads": 1,
     "runs": 50, "warmup": 5, "predict": true}

and gets back one JSON object (stdout, or ``--out``): timings, memory, versions, and the
probabilities on every evaluation image. Progress goes to stderr as ``@@progress phase done total``
lines, which the parent turns into its progress bar.

Order of work (each step timed): import the backend -> load -> first inference (one prepared
image) -> warm-up -> N timed runs of the bare model (``run_raw``), of the model with its own
pre/post-processing on a prepared image (``predict_pixels``), and end to end from the file
(decode + preprocess + inference) -> predictions on every evaluation image.
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()  # before any heavy import: "process ready" times count from here

import argparse
import json
import os
import platform
import sys
import traceback
from pathlib import Path
from typing import Any

from edgemri.bench.measure import memory_snapshot, repeat_ms, summarize, timed_ms

PROGRESS_PREFIX = "@@progress"


def progress(phase: str, done: int, total: int) -> None:
    """One machine-readable progress line for the parent's progress bar."""
    print(f"{PROGRESS_PREFIX} {phase} {done} {total}", file=sys.stderr, flush=True)


class KerasModel:
    """The FP32 reference: the run's ``model.keras`` through TensorFlow (GPU when visible)."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.threads = int(spec.get("threads") or 0)

    def import_backend(self) -> None:
        import tensorflow as tf

        if self.threads:  # must happen before TensorFlow creates its thread pools
            tf.config.threading.set_intra_op_parallelism_threads(self.threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        import keras  # noqa: F401

        self.tf = tf

    def load(self) -> None:
        from edgemri.runtime.manifest import Manifest

        self.manifest = Manifest.load(self.spec["manifest"])
        from edgemri.train.keras_model import load_keras

        self.model = load_keras(self.spec["path"])

    def run_raw(self, x: Any) -> Any:
        return self.model.predict_on_batch(x)

    def predict_pixels(self, pixels: Any) -> Any:
        from edgemri.runtime.preprocess import normalize

        return self.model.predict_on_batch(normalize(pixels, self.manifest.input))

    def predict_file(self, path: str) -> Any:
        from edgemri.runtime.images import load_image
        from edgemri.runtime.preprocess import prepare_pixels

        return self.predict_pixels(prepare_pixels(load_image(path), self.manifest.input)[None])

    def predict_all(self, pixels: Any) -> Any:
        """Every evaluation image, batched: the reference definition of the FP32 probabilities."""
        from edgemri.train.keras_model import predict_probs

        return predict_probs(self.model, pixels, self.manifest.input)

    def model_input(self, pixels: Any) -> Any:
        from edgemri.runtime.preprocess import normalize

        return normalize(pixels, self.manifest.input)

    def info(self) -> dict[str, Any]:
        import keras

        gpus = [d.name for d in self.tf.config.list_physical_devices("GPU")]
        return {
            "backend": "keras",
            "device": "GPU" if gpus else "CPU",
            "gpus": gpus,
            "threads": self.threads or None,
            "xnnpack": None,
            "versions": {"tensorflow": self.tf.__version__, "keras": keras.__version__},
        }


class ArtifactModel:
    """A converted artifact through the lightweight runtime (``edgemri.runtime.predictor``)."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.threads = spec.get("threads")

    def import_backend(self) -> None:
        from edgemri.runtime import predictor

        self.predictor_mod = predictor

    def load(self) -> None:
        self.predictor = self.predictor_mod.Predictor.load(self.spec["path"], threads=self.threads)
        self.manifest = self.predictor.manifest

    def run_raw(self, x: Any) -> Any:
        return self.predictor.run_raw(x)

    def predict_pixels(self, pixels: Any) -> Any:
        return self.predictor.predict_pixels(pixels)

    def predict_file(self, path: str) -> Any:
        return self.predictor.predict([path])

    def predict_all(self, pixels: Any) -> Any:
        import numpy as np

        out = []
        for i in range(len(pixels)):  # batch 1: converted models usually have a fixed batch
            out.append(self.predictor.predict_pixels(pixels[i:i + 1]))
            if i % 25 == 0:
                progress("predict", i, len(pixels))
        return np.concatenate(out, axis=0) if out else np.zeros((0, self.manifest.num_classes))

    def model_input(self, pixels: Any) -> Any:
        from edgemri.runtime.preprocess import to_model_input

        return to_model_input(pixels, self.manifest.input)

    def info(self) -> dict[str, Any]:
        return dict(self.predictor.info())


def load_eval_pixels(paths: list[str], spec: Any) -> tuple[Any, list[int], dict[str, str]]:
    """Decode + prepare every evaluation image; undecodable ones are listed, not fatal."""
    import numpy as np

    from edgemri.errors import EdgemriError
    from edgemri.runtime.images import load_image
    from edgemri.runtime.preprocess import prepare_pixels

    arrays, kept, bad = [], [], {}
    for i, path in enumerate(paths):
        try:
            arrays.append(prepare_pixels(load_image(path), spec))
            kept.append(i)
        except EdgemriError as exc:
            bad[path] = exc.one_line()
        if i % 50 == 0:
            progress("decode", i, len(paths))
    shape = (0, spec.height, spec.width, spec.channels)
    return (np.stack(arrays) if arrays else np.zeros(shape, np.uint8)), kept, bad


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the whole protocol on one model; return the result row (JSON-ready)."""
    import numpy as np

    model = KerasModel(spec) if spec.get("kind") == "keras" else ArtifactModel(spec)
    runs, warmup = int(spec.get("runs", 50)), int(spec.get("warmup", 5))
    paths = [str(p) for p in spec.get("images") or []]
    if not paths:
        raise ValueError("the spec lists no evaluation images")
    result: dict[str, Any] = {"name": spec.get("name"), "kind": spec.get("kind", "artifact"),
                              "path": str(spec["path"]), "threads": spec.get("threads")}
    t_spawn_ready = (time.perf_counter() - _T_START) * 1000.0

    progress("load", 0, 1)
    result["import_ms"], _ = timed_ms(model.import_backend)
    result["load_ms"], _ = timed_ms(model.load)
    from edgemri.runtime.formats import artifact_size

    result["file_size_bytes"] = artifact_size(spec["path"])  # with an OpenVINO .bin
    spec_in = model.manifest.input
    from edgemri.runtime.images import load_image
    from edgemri.runtime.preprocess import prepare_pixels

    first = prepare_pixels(load_image(paths[0]), spec_in)[None]
    result["first_inference_ms"], _ = timed_ms(lambda: model.predict_pixels(first))
    result["startup_ms"] = (time.perf_counter() - _T_START) * 1000.0
    result["interpreter_start_to_worker_ms"] = t_spawn_ready
    result["memory_after_first_inference"] = first_mem = memory_snapshot()
    result["rss_first_inference_mb"] = first_mem["vm_hwm_mb"] if first_mem["vm_hwm_mb"] is not None \
        else first_mem["ru_maxrss_mb"]

    x = model.model_input(first)
    progress("latency", 0, 3)
    result["latency_raw_ms"] = summarize(repeat_ms(lambda i: model.run_raw(x), runs, warmup))
    progress("latency", 1, 3)
    result["latency_model_ms"] = summarize(repeat_ms(lambda i: model.predict_pixels(first), runs, warmup))
    progress("latency", 2, 3)
    result["latency_e2e_ms"] = summarize(
        repeat_ms(lambda i: model.predict_file(paths[i % len(paths)]), runs, warmup))
    progress("latency", 3, 3)
    for key, lat in (("throughput_ips", "latency_model_ms"), ("throughput_e2e_ips", "latency_e2e_ms")):
        mean = result[lat].get("mean") or float("nan")
        result[key] = 1000.0 / mean if mean > 0 else None

    if spec.get("predict", True):
        pixels, kept, bad = load_eval_pixels(paths, spec_in)
        t0 = time.perf_counter()
        probs = np.asarray(model.predict_all(pixels), dtype=np.float64) if len(kept) else np.zeros((0, 0))
        result["predict_seconds"] = time.perf_counter() - t0
        full: list[list[float] | None] = [None] * len(paths)
        for row, idx in enumerate(kept):
            full[idx] = [float(v) for v in probs[row]]
        result["probabilities"] = full
        result["bad_images"] = bad
        progress("predict", len(paths), len(paths))

    result["info"] = model.info()
    if spec.get("kind") != "keras":  # the runtime hints it ran with, and what edgemri tune measured
        from edgemri.bench.tune import read_tuning

        result["tuning"] = {"runtime": result["info"].get("runtime"), "tune": read_tuning(spec["path"])}
    result["classes"] = list(model.manifest.classes)
    result["python"] = platform.python_version()
    result["numpy"] = np.__version__
    result["memory_peak"] = memory_snapshot()
    # VmHWM is this program's own peak: ru_maxrss survives exec, so a worker forked from a big
    # parent (pytest with TensorFlow loaded) would report the parent's size.
    peak = result["memory_peak"]
    result["peak_rss_mb"] = peak["vm_hwm_mb"] if peak["vm_hwm_mb"] is not None else peak["ru_maxrss_mb"]
    result["status"] = "ok"
    return result


def failure(spec: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    """The row for a model that could not be measured: the reason a user can act on."""
    from edgemri.errors import EdgemriError

    reason = exc.one_line() if isinstance(exc, EdgemriError) else f"{type(exc).__name__}: {exc}"
    return {"name": spec.get("name"), "kind": spec.get("kind", "artifact"), "path": str(spec.get("path")),
            "threads": spec.get("threads"), "status": "failed", "reason": reason}


def read_spec(text: str) -> dict[str, Any]:
    """``--spec`` is inline JSON or the path of a JSON file (long image lists)."""
    if not text.lstrip().startswith("{") and Path(text).is_file():
        text = Path(text).read_text()
    return json.loads(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgemri.bench.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--spec", required=True, help="JSON spec, inline or a file path")
    parser.add_argument("--out", help="write the result JSON here instead of stdout")
    args = parser.parse_args(argv)
    from edgemri import quiet

    quiet.configure(quiet.debug_requested())  # before anything imports TensorFlow
    spec = read_spec(args.spec)
    try:
        result, code = measure(spec), 0
    except Exception as exc:  # noqa: BLE001 - the parent needs a row whatever went wrong
        traceback.print_exc(file=sys.stderr)
        result, code = failure(spec, exc), 1
    text = json.dumps(result, default=_json_default)
    if args.out:
        from edgemri.atomic import write_text

        write_text(args.out, text + "\n")
    else:
        print(text, flush=True)
    return code


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)


if __name__ == "__main__":
    sys.exit(main())
