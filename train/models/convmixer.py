"""ConvMixer (Trockman & Kolter, "Patches Are All You Need?", 2022), sized for the edge.

Patch embedding (conv k=p, stride p), then ``depth`` blocks of residual depthwise conv (token
mixing) and pointwise conv (channel mixing), each followed by activation and BatchNorm.
``convmixer`` uses exact GELU and kernel 9 as in the paper; ``convmixer-edge`` uses ReLU6, because
exact GELU lowers to Erf, which LiteRT runs only as a Flex op (not on a plain Android/int8
interpreter); kernel 5, because LiteRT's XNNPACK delegate runs depthwise kernels above 5x5 on a slow
path (at 128 px, dim 128, depth 6, patch 8: int8 7.1 ms with kernel 9, 0.35 ms with kernel 5); and
``order="fold"``: BatchNorm before the activation, so it folds into the convolution instead of
staying a separate multiply-add that int8 must requantize (trained on brain MRI: int8 top-1
agreement with FP32 99.8% folded vs 97.3% in the paper's order, and int8 faster than fp32).
``stack=N`` chains N depthwise convolutions per block (a 9x9 receptive field from two 5x5): measured,
not adopted. The table is in docs/train.md ("ConvMixer-edge").
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from edgemri.errors import UsageError
from edgemri.train.models.common import ModelEntry, classifier_head, model_input
from edgemri.train.models.registry import MODELS

ACTIVATIONS = ("gelu", "relu6", "relu")
ORDERS = ("paper", "fold")


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
                    activation: str = "gelu", dropout: float = 0.0, order: str = "paper", stack: int = 1) -> Any:
    layers = keras.layers
    if order not in ORDERS:
        raise UsageError(f"unknown convmixer order {order!r}", f"Choose one of: {', '.join(ORDERS)}")
    if stack < 1:
        raise UsageError(f"convmixer stack must be >= 1, not {stack}")
    if input_shape[0] < patch or input_shape[1] < patch:
        raise UsageError(f"image size {input_shape[0]} is smaller than the convmixer patch {patch}")
    inputs = model_input(keras, input_shape)
    x = layers.Conv2D(dim, patch, strides=patch, name="stem_conv")(inputs)

    def act_bn(x: Any, tag: str) -> Any:
        """The paper's activation-then-BatchNorm, or BatchNorm-then-activation (foldable) for ``fold``."""
        act = _activation(keras, activation, f"{tag}_act")
        bn = layers.BatchNormalization(momentum=0.9, name=f"{tag}_bn")
        return bn(act(x)) if order == "paper" else act(bn(x))

    x = act_bn(x, "stem")
    for i in range(depth):
        shortcut = x
        for j in range(stack):
            x = layers.DepthwiseConv2D(kernel, padding="same", name=f"mixer{i}_dw{j if j else ''}")(x)
        x = act_bn(x, f"mixer{i}_dw")
        x = layers.Add(name=f"mixer{i}_add")([x, shortcut])
        x = layers.Conv2D(dim, 1, name=f"mixer{i}_pw")(x)
        x = act_bn(x, f"mixer{i}_pw")
    outputs = classifier_head(keras, x, num_classes, dropout)
    return keras.Model(inputs, outputs, name="convmixer")


_DEFAULTS = {"dim": 256, "depth": 8, "kernel": 9, "patch": 7, "dropout": 0.0, "order": "paper", "stack": 1}

MODELS.add(ModelEntry(
    name="convmixer", builder=build_convmixer, defaults={**_DEFAULTS, "activation": "gelu"}, min_size=16,
    description="ConvMixer-256/8, kernel 9, patch 7, exact GELU as in the paper",
))
MODELS.add(ModelEntry(
    name="convmixer-edge", builder=build_convmixer, defaults={**_DEFAULTS, "activation": "relu6", "kernel": 5, "order": "fold"},
    min_size=16,
    description="ConvMixer with ReLU6 (builtin int8 TFLite ops only: exact GELU lowers to Erf, a Flex op) and "
                "kernel 5 (XNNPACK's fast depthwise path: 20x faster than 9) and BatchNorm folded into the "
                "convolutions (int8 agrees with FP32)",
))
