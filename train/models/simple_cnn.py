"""A three-block CNN (16/32/64 filters): the small baseline of the published notebooks."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from edgemri.train.models.common import ModelEntry, classifier_head, model_input
from edgemri.train.models.registry import MODELS


def build_simple_cnn(keras: ModuleType, input_shape: tuple[int, int, int], num_classes: int,
                     filters: str = "16,32,64", dropout: float = 0.2) -> Any:
    """Conv3x3 -> BN -> ReLU -> MaxPool per block, then pool, dropout and a dense softmax head."""
    layers = keras.layers
    inputs = model_input(keras, input_shape)
    x = inputs
    for i, n in enumerate(int(f) for f in str(filters).split(",")):
        x = layers.Conv2D(n, 3, padding="same", use_bias=False, name=f"block{i + 1}_conv")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"block{i + 1}_bn")(x)
        x = layers.ReLU(name=f"block{i + 1}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"block{i + 1}_pool")(x)
    outputs = classifier_head(keras, x, num_classes, dropout)
    return keras.Model(inputs, outputs, name="simple_cnn")


MODELS.add(ModelEntry(
    name="simple-cnn", builder=build_simple_cnn, defaults={"filters": "16,32,64", "dropout": 0.2}, min_size=8,
    description="3 blocks conv3x3 (16/32/64) + BN + ReLU + max-pool, dropout, dense softmax head",
))
