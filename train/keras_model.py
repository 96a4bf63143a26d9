"""Loading a trained Keras model safely, and predicting probabilities from prepared pixels."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from edgemri.errors import ModelFileError
from edgemri.extras import require
from edgemri.runtime.manifest import InputSpec
from edgemri.train.arrays import normalize_batch


def load_keras(path: str | os.PathLike[str]) -> Any:
    """Load a ``.keras`` file with ``safe_mode=True`` (no pickled lambdas); a clear error when corrupt."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} not found", "Train one first: edgemri train --out DIR")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a .keras archive (truncated or corrupt)",
                             "Re-train, or restore it from RUN/checkpoint/last.keras")
    keras = require("keras", "train", "loading a Keras model")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:
        raise ModelFileError(f"cannot load {path}: {type(exc).__name__}: {str(exc)[:200]}",
                             "Re-train, or restore it from RUN/checkpoint/last.keras") from exc


def predict_probs(model: Any, pixels: np.ndarray, spec: InputSpec, batch_size: int = 64) -> np.ndarray:
    """uint8 prepared pixels (N, H, W, C) -> (N, K) float32 probabilities, in inference mode."""
    n = len(pixels)
    out: list[np.ndarray] = []
    for start in range(0, n, batch_size):
        x = normalize_batch(pixels[start:start + batch_size], spec)
        out.append(np.asarray(model.predict_on_batch(x), dtype=np.float32))
    if not out:
        k = int(model.outputs[0].shape[-1])
        return np.zeros((0, k), dtype=np.float32)
    return np.concatenate(out, axis=0)
