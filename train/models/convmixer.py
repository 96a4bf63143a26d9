"""ConvMixer (Trockman & Kolter, "Patches Are All You Need?", 2022), sized for the edge.

Patch embedding (conv k=p, stride p), then ``depth`` blocks of residual depthwise conv (token
mixing) and pointwise conv (channel mixing), each followed by activation and BatchNorm.
``convmixer`` uses exact GELU as in the paper; ``convmixer-edge`` uses ReLU6, because exact GELU
lowers to Erf, which LiteRT runs only as a Flex op (not on a plain Android/int8 interpreter).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from edgemri.errors import UsageError
from edgemri.train.models.common import ModelEntry, classifier_head, model_input
from edgemri.train.models.registry import MODELS

ACTIVATIONS = ("gelu", "relu6", "relu")


def _activation(keras: ModuleType, kind: str, name: str) -> Any:
    if kind == "gelu":
        return keras.layers.Activation("gelu", name=name)
    if kind == "relu6":
        return keras.layers.ReLU(max_value=6.0, name=name)
    if kind == "relu":
        return keras.layers.ReLU(name=name)
    raise UsageError(f"unknown convmixer activation {kind!r}", f"Choose one of: {', '.join(ACTIVATIONS)}")


def build_convmixer(keras: ModuleType, input_shape: tuple[int, int, int], num_classes: int,
                    dim: int = 256, depth: int = 8, kernel: int = 9, patch: int = 7,
                    activation: str = "gelu", dropout: float = 0.0) -> Any:
    layers = keras.layers
    if input_shape[0] < patch or input_shape[1] < patch:
        raise UsageError(f"image size {input_shape[0]} is smaller than the convmixer patch {patch}")
    inputs = model_input(keras, input_shape)
    x = layers.Conv2D(dim, patch, strides=patch, name="stem_conv")(inputs)
    x = _activation(keras, activation, "stem_act")(x)
    x = layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    for i in range(depth):
        shortcut = x
        x = layers.DepthwiseConv2D(kernel, padding="same", name=f"mixer{i}_dw")(x)
        x = _activation(keras, activation, f"mixer{i}_dw_act")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"mixer{i}_dw_bn")(x)
        x = layers.Add(name=f"mixer{i}_add")([x, shortcut])
        x = layers.Conv2D(dim, 1, name=f"mixer{i}_pw")(x)
        x = _activation(keras, activation, f"mixer{i}_pw_act")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"mixer{i}_pw_bn")(x)
    outputs = classifier_head(keras, x, num_classes, dropout)
    return keras.Model(inputs, outputs, name="convmixer")


_DEFAULTS = {"dim": 256, "depth": 8, "kernel": 9, "patch": 7, "dropout": 0.0}

MODELS.add(ModelEntry(
    name="convmixer", builder=build_convmixer, defaults={**_DEFAULTS, "activation": "gelu"}, min_size=16,
    description="ConvMixer-256/8, kernel 9, patch 7, exact GELU as in the paper",
))
MODELS.add(ModelEntry(
    name="convmixer-edge", builder=build_convmixer, defaults={**_DEFAULTS, "activation": "relu6"}, min_size=16,
    description="ConvMixer with ReLU6, so builtin int8 TFLite ops only (exact GELU lowers to Erf, a Flex op)",
))
