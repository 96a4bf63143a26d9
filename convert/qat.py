"""``edgemri qat RUN``: quantization-aware fine-tuning, run in a tf_keras subprocess.

tfmot works only with Keras 2 (tf_keras), selected by ``TF_USE_LEGACY_KERAS=1`` before TensorFlow
is imported, while the rest of edgemri uses Keras 3. So this (Keras 3) process dumps what the
worker needs into plain .npz files (``allow_pickle=False``): trained weights by layer name, and
the run's train/val splits already normalized; the worker (``qat_worker.py``) does the rest.
Outputs land atomically in ``RUN/qat/``: saved_model/, metrics.json, config.json.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgemri import quiet
from edgemri.atomic import atomic_dir, write_json
from edgemri.convert.qat_worker import WEIGHT_SEP
from edgemri.errors import ConversionError, RunError
from edgemri.rundir import RunDir
from edgemri.runtime.preprocess import normalize

log = logging.getLogger("edgemri.convert")


def dump_weights(model: Any, dest: Path) -> int:
    """``{layer::i: array}`` of every weighted layer of a Keras 3 model -> .npz."""
    arrays = {f"{layer.name}{WEIGHT_SEP}{i}": np.asarray(w)
              for layer in model.layers for i, w in enumerate(layer.get_weights())}
    np.savez(dest, **arrays)
    return len(arrays)


def run_qat(run_path: str | os.PathLike[str], epochs: int = 2, lr: float = 1e-5, batch_size: int = 32,
            seed: int = 0, timeout: float | None = None, distill: float = 1.0) -> dict[str, Any]:
    """Fine-tune the run's model with fake quantization; returns (and writes) qat/metrics.json.

    ``distill`` (0..1) mixes the FP32 model's own probabilities into the targets: at 1 the QAT model
    learns to copy FP32 rather than to fit the labels again, which keeps the int8 model's top-1
    agreement with FP32 high (QAT on labels alone is one more epoch of training and drifts).
    """
    from edgemri.convert.source import keras_probs, load_keras_model, split_arrays

    run = RunDir.open(run_path)
    manifest, config = run.manifest(), run.config()
    if "arch" not in config:
        raise RunError(f"{run.config_path} has no \"arch\"", "Re-run training, which writes it")
    if epochs < 0:
        raise ConversionError(f"--epochs must be >= 0, not {epochs}")
    if not 0.0 <= distill <= 1.0:
        raise ConversionError(f"--distill must be between 0 and 1, not {distill}")
    spec = manifest.input
    model = load_keras_model(run.model)
    with tempfile.TemporaryDirectory(prefix="edgemri-qat-") as tmp:
        work = Path(tmp)
        dump_weights(model, work / "weights.npz")
        x_train, y_train = split_arrays(run, "train", progress=False)
        x_val, y_val = split_arrays(run, "val", progress=False)
        ref = keras_probs(model, x_val, spec)
        ref_train = keras_probs(model, x_train, spec) if distill > 0 else np.zeros((0, manifest.num_classes))
        np.savez(work / "data.npz", x_train=normalize(x_train, spec), y_train=y_train,
                 x_val=normalize(x_val, spec), y_val=y_val, ref_val=ref, ref_train=ref_train)
        job = {"arch": config["arch"], "arch_options": config.get("arch_options") or {},
               "input_shape": [spec.height, spec.width, spec.channels], "num_classes": manifest.num_classes,
               "weights": str(work / "weights.npz"), "data": str(work / "data.npz"), "epochs": epochs, "lr": lr,
               "batch_size": batch_size, "seed": seed, "distill": distill, "saved_model": str(work / "saved_model")}
        job_path = work / "job.json"
        job_path.write_text(json.dumps(job))
        result = _spawn(job_path, timeout)
        with atomic_dir(run.qat_saved_model) as dest:
            os.rmdir(dest)
            os.replace(work / "saved_model", dest)
    metrics = {**result, "epochs": epochs, "lr": lr, "distill": distill, "saved_model": str(run.qat_saved_model)}
    write_json(run.qat_dir / "metrics.json", metrics)
    write_json(run.qat_dir / "config.json", {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed,
                                             "distill": distill,
                                             "arch": config["arch"], "arch_options": job["arch_options"]})
    log.info("QAT: fp32 val accuracy %.4f -> QAT %.4f", metrics["fp32_val_accuracy"], metrics["qat_val_accuracy"])
    return metrics


def _spawn(job_path: Path, timeout: float | None) -> dict[str, Any]:
    """Run the worker with Keras 2 selected only in its environment; its result or one-line error."""
    env = quiet.child_env(TF_USE_LEGACY_KERAS="1")
    cmd = [sys.executable, "-m", "edgemri.convert.qat_worker", str(job_path)]
    try:
        proc = subprocess.run(cmd, env=env, timeout=timeout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ConversionError(f"QAT worker did not finish within {timeout} s") from exc
    result_file = Path(f"{job_path}.result.json")
    result = json.loads(result_file.read_text()) if result_file.is_file() else None
    if quiet.debug_requested():
        sys.stderr.write(proc.stdout)
    if proc.returncode != 0 or result is None or "error" in result:
        if result is None:
            tail = proc.stdout.strip().splitlines()[-1:] or ["no output"]
            raise ConversionError(f"QAT worker exited with code {proc.returncode}: {tail[0][:300]}",
                                  "Run with EDGEMRI_DEBUG=1 to see its output")
        if "traceback" in result and quiet.debug_requested():
            sys.stderr.write(result["traceback"])
        raise ConversionError(f"QAT failed: {result['error']}", result.get("hint") or None)
    return result
