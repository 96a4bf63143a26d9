"""Grad-CAM overlays (Selvaraju et al. 2017): where in the image the predicted class came from.

The last layer with a spatial (rank-4) output is chosen automatically: on the flat models this is
the backbone's final activation (``out_relu`` on MobileNetV2), which is why the models must not be
nested. Gradients need TensorFlow (the default Keras backend); the overlay is numpy + Pillow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgemri.atomic import atomic_path
from edgemri.errors import UsageError
from edgemri.extras import require
from edgemri.rundir import RunDir


def last_spatial_layer(model: Any) -> str:
    """Name of the last layer whose output is (N, H, W, C) with H, W > 1."""
    for layer in reversed(model.layers):
        shape = getattr(layer.output, "shape", None)
        if shape is not None and len(shape) == 4 and (shape[1] or 2) > 1:
            return layer.name
    raise UsageError(f"model {model.name} has no spatial layer for Grad-CAM")


def grad_cam(model: Any, x: np.ndarray, layer: str, class_index: int | None = None) -> tuple[np.ndarray, int]:
    """-> (heatmap float32 (h, w) in [0, 1] at the layer's resolution, explained class index)."""
    tf = require("tensorflow", "train", "Grad-CAM")
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UsageError("edgemri explain needs the TensorFlow Keras backend", "Unset KERAS_BACKEND")
    probe = keras.Model(model.inputs, [model.get_layer(layer).output, model.outputs[0]])
    with tf.GradientTape() as tape:
        features, probs = probe(x, training=False)
        index = int(np.argmax(probs[0])) if class_index is None else class_index
        score = probs[:, index]
    grads = tape.gradient(score, features)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))[0].numpy()
    peak = float(cam.max())
    return (cam / peak if peak > 0 else cam).astype(np.float32), index


def overlay(pixels: np.ndarray, heat: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """uint8 (H, W, 3) image blended with a jet-like colouring of the heatmap, resized to it."""
    from edgemri.runtime.preprocess import resize

    h, w = pixels.shape[:2]
    heat8 = resize((heat * 255).astype(np.uint8)[..., None], h, w)[..., 0].astype(np.float32) / 255.0
    colour = np.stack([np.clip(1.5 - np.abs(4 * heat8 - k), 0, 1) for k in (3, 2, 1)], axis=-1) * 255
    return np.clip((1 - alpha) * pixels.astype(np.float32) + alpha * colour, 0, 255).astype(np.uint8)


def explain(run: RunDir | str | os.PathLike[str], images: list[str | os.PathLike[str]], out: str | os.PathLike[str],
            layer: str | None = None, class_name: str | None = None) -> list[dict[str, Any]]:
    """Write ``out/<image stem>_gradcam.png`` per image; returns what was explained."""
    from PIL import Image

    from edgemri.runtime.images import load_image
    from edgemri.runtime.preprocess import normalize, prepare_pixels
    from edgemri.train.keras_model import load_keras

    run = run if isinstance(run, RunDir) else RunDir.open(run)
    manifest = run.manifest()
    model = load_keras(run.model)
    layer = layer or last_spatial_layer(model)
    if layer not in {lay.name for lay in model.layers}:
        raise UsageError(f"model has no layer {layer!r}", f"Default (omit --layer): {last_spatial_layer(model)}")
    target = None
    if class_name is not None:
        if class_name not in manifest.classes:
            raise UsageError(f"unknown class {class_name!r}", f"Classes: {', '.join(manifest.classes)}")
        target = manifest.classes.index(class_name)
    results = []
    for image in images:
        pixels = prepare_pixels(load_image(image), manifest.input)
        heat, index = grad_cam(model, normalize(pixels[None], manifest.input), layer, target)
        dest = Path(out) / f"{Path(image).stem}_gradcam.png"
        with atomic_path(dest) as tmp:
            Image.fromarray(overlay(pixels, heat)).save(tmp, format="PNG")
        results.append({"image": str(image), "class": manifest.classes[index], "layer": layer, "png": str(dest)})
    return results
