"""What a conversion reads from a run: the Keras model, its split arrays, a SavedModel export.

Loading a ``model.keras`` and a run's split arrays belongs to training
(``edgemri.train.keras_model`` / ``edgemri.train.arrays``); conversion calls those, so it never
re-implements preprocessing: everything goes through ``runtime.preprocess``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgemri.extras import require
from edgemri.rundir import RunDir
from edgemri.runtime.manifest import InputSpec

INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"


def load_keras_model(path: Path) -> Any:
    """Load a Keras 3 ``.keras`` file with ``safe_mode=True``; one-line error when it is broken."""
    from edgemri.train.keras_model import load_keras

    return load_keras(path)


def keras_probs(model: Any, pixels: np.ndarray, spec: InputSpec, batch_size: int = 64) -> np.ndarray:
    """FP32 reference probabilities of the Keras model on prepared uint8 pixels."""
    from edgemri.train.keras_model import predict_probs

    return np.asarray(predict_probs(model, pixels, spec, batch_size=batch_size), dtype=np.float32)


def split_arrays(run: RunDir, split: str, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 pixels NHWC, int64 labels) of one split of the run, prepared at the manifest spec."""
    from edgemri.train.arrays import split_arrays as train_split_arrays

    return train_split_arrays(run, split, progress=progress)


def export_saved_model(model: Any, spec: InputSpec, dest: Path) -> Path:
    """Keras 3 model -> TF SavedModel with ONE explicit float32 NHWC input named ``input``.

    A fixed signature (dynamic batch only) is what TFLite, tf2onnx and OpenVINO all need; the
    ``serving_default`` signature returns ``{"output_0": probabilities}``.
    """
    tf = require("tensorflow", "convert", "exporting a SavedModel")
    sig = [tf.TensorSpec([None, spec.height, spec.width, spec.channels], tf.float32, name=INPUT_NAME)]
    model.export(str(dest), format="tf_saved_model", input_signature=sig, verbose=False)
    return dest
