"""Pieces shared by the architecture modules: the registry entry, the head, BN momentum, weights."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from edgemri.errors import ModelFileError, UsageError

#: Head layers carry this prefix; everything else is "backbone" (frozen while fine-tuning).
HEAD_PREFIX = "head_"
#: keras.applications uses 0.999; from-scratch training with it leaves the moving statistics far
#: from the batch statistics, so inference mode predicts one constant class. 0.9 tracks them.
BN_MOMENTUM = 0.9


@dataclass(frozen=True)
class ModelEntry:
    """One registered architecture: its builder, its options with defaults, its minimum input size.

    The CLI help, the docs table (edgemri.doctables) and the per-architecture tests all read these
    fields, so an architecture is described here and nowhere else.
    """

    name: str
    builder: Callable[..., Any]
    defaults: dict[str, Any] = field(default_factory=dict)
    min_size: int = 32
    description: str = ""

    def resolve_options(self, opts: dict[str, Any]) -> dict[str, Any]:
        """Defaults overridden by ``opts``, values coerced to the default's type."""
        unknown = sorted(set(opts) - set(self.defaults))
        if unknown:
            known = ", ".join(self.defaults) or "none"
            raise UsageError(f"unknown architecture option(s) {', '.join(unknown)}", f"Options: {known}")
        resolved = dict(self.defaults)
        for key, value in opts.items():
            resolved[key] = coerce(key, value, self.defaults[key])
        return resolved


def coerce(key: str, value: Any, default: Any) -> Any:
    """Turn a CLI string (``--arch-opt alpha=0.5``) into the type of the option's default."""
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    try:
        if isinstance(default, bool):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError as exc:
        raise UsageError(f"option {key}={value!r} is not a valid {type(default).__name__}") from exc
    return value


def set_bn_momentum(model: Any, momentum: float = BN_MOMENTUM) -> int:
    """Set every BatchNormalization momentum; returns how many layers changed."""
    count = 0
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            layer.momentum = momentum
            count += 1
    return count


def classifier_head(keras: ModuleType, x: Any, num_classes: int, dropout: float = 0.0,
                    pool: bool = True, kernel_initializer: Any = "glorot_uniform") -> Any:
    """Global average pool, optional dropout, float32 softmax (float32 even under mixed precision)."""
    layers = keras.layers
    if pool:
        x = layers.GlobalAveragePooling2D(name=f"{HEAD_PREFIX}pool")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name=f"{HEAD_PREFIX}dropout")(x)
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name=f"{HEAD_PREFIX}probs",
                        kernel_initializer=kernel_initializer)(x)


def model_input(keras: ModuleType, input_shape: tuple[int, int, int]) -> Any:
    return keras.layers.Input(shape=input_shape, name="input", dtype="float32")


def flat_application(keras: ModuleType, app_name: str, input_shape: tuple[int, int, int], num_classes: int,
                     name: str, dropout: float, **app_kwargs: Any) -> Any:
    """A keras.applications backbone built on our own Input tensor, so its layers sit in ONE flat model.

    Passing ``input_tensor=`` makes the application's layers part of the graph that starts at our
    Input; taking its output tensor (rather than calling the application as a layer) yields a flat
    functional model without a nested sub-model, which QAT and Grad-CAM need.
    """
    inputs = model_input(keras, input_shape)
    app = getattr(keras.applications, app_name)
    base = app(input_tensor=inputs, include_top=False, weights=None, **app_kwargs)
    outputs = classifier_head(keras, base.output, num_classes, dropout)
    model = keras.Model(inputs, outputs, name=name)
    set_bn_momentum(model)
    rename_auto_named(model, name)
    return model


def _is_auto_name(name: str, class_name: str) -> bool:
    """``zero_padding2d`` / ``zero_padding2d_3`` for ZeroPadding2D, as both Kerases generate them."""
    return re.sub(r"_\d+$", "", name).replace("_", "") == class_name.lower()


def rename_auto_named(model: Any, prefix: str) -> int:
    """Make layer names identical across processes and across Keras 3 / tf_keras.

    Auto-named layers (``zero_padding2d_3``) get a name that does not depend on how many models the
    process built before; tf_keras' ``conv1/conv`` becomes Keras 3's ``conv1_conv``. Weights then copy
    by layer name between the two.
    """
    count = 0
    for index, layer in enumerate(model.layers):
        new = None
        if _is_auto_name(layer.name, type(layer).__name__):
            new = f"{prefix}_{type(layer).__name__.lower()}_at{index}"
        elif "/" in layer.name:
            new = layer.name.replace("/", "_")
        if new:
            layer._name = new  # tf_keras keeps the name here
            try:
                layer.name = new  # Keras 3 keeps it in a plain attribute
            except AttributeError:
                pass
            count += 1
    return count


def backbone_layers(model: Any) -> list[Any]:
    """Layers that carry weights and are not the head, in graph order."""
    return [layer for layer in model.layers
            if not layer.name.startswith(HEAD_PREFIX) and layer.weights and layer.name != "input"]


def set_backbone_trainable(model: Any, unfreeze_last: int | None) -> None:
    """Freeze the backbone, then unfreeze its last ``unfreeze_last`` weighted non-BN layers (None: all).

    BatchNormalization stays frozen while fine-tuning a partially frozen backbone: with small
    batches its statistics would otherwise drift away from the pretrained ones.
    """
    backbone = backbone_layers(model)
    if unfreeze_last is None:
        for layer in backbone:
            layer.trainable = True
        return
    convs = [layer for layer in backbone if type(layer).__name__ != "BatchNormalization"]
    keep = max(0, int(unfreeze_last))
    chosen = {id(layer) for layer in convs[len(convs) - keep:]} if keep else set()
    for layer in backbone:
        layer.trainable = id(layer) in chosen


def load_pretrained(model: Any, path: str | os.PathLike[str]) -> None:
    """Load user-provided weights by layer name, skipping mismatched layers (a new head, say).

    ``path`` is an ImageNet-style ``.h5`` / ``.weights.h5``, or one of your own models: a ``.keras``
    file or a run directory (its ``model.keras``, loaded in safe mode), e.g. a brain MRI model to start
    a breast ultrasound one from.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise ModelFileError(f"weights file {path} not found",
                             "Pass an ImageNet .h5 you have on disk, or a run directory / .keras file")
    if path.suffix == ".keras":
        _load_from_keras_model(model, path)
        return
    if not (path.name.endswith(".h5") or path.name.endswith(".hdf5")):
        raise ModelFileError(f"weights file {path} is not an .h5/.weights.h5/.keras file or a run directory")
    # Legacy .h5 (the published ImageNet files) load by layer name; Keras 3 .weights.h5 by structure.
    by_name = not path.name.endswith(".weights.h5")
    try:
        if by_name:
            model.load_weights(str(path), skip_mismatch=True, by_name=True)
        else:
            model.load_weights(str(path), skip_mismatch=True)
    except Exception as exc:
        raise ModelFileError(f"cannot load weights from {path}: {str(exc)[:300]}",
                             "Pass an .h5 saved for this architecture (include_top=False ImageNet weights)") from exc


def _load_from_keras_model(model: Any, path: Path) -> int:
    """Copy every layer's weights from the model in ``path`` whose name and shapes match; the count copied."""
    from edgemri.train.keras_model import load_keras

    source = {layer.name: layer for layer in load_keras(path).layers}
    copied = 0
    for layer in model.layers:
        other = source.get(layer.name)
        if other is None or not layer.weights:
            continue
        theirs = other.get_weights()
        if [w.shape for w in theirs] == [tuple(w.shape) for w in layer.weights]:
            layer.set_weights(theirs)
            copied += 1
    if not copied:
        raise ModelFileError(f"no layer of {path} matches this architecture by name and shape",
                             "Start from a model of the same --arch and --arch-opt values")
    return copied
