"""MobileNetV2 (Sandler et al. 2018): the default edge backbone, flat, BN momentum 0.9."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from edgemri.train.models.common import ModelEntry, flat_application
from edgemri.train.models.registry import MODELS


def build_mobilenetv2(keras: ModuleType, input_shape: tuple[int, int, int], num_classes: int,
                      alpha: float = 1.0, dropout: float = 0.2) -> Any:
    """Width multiplier ``alpha``; dropout before the softmax head."""
    return flat_application(keras, "MobileNetV2", input_shape, num_classes, "mobilenetv2", dropout, alpha=alpha)


MODELS.add(ModelEntry(
    name="mobilenetv2", builder=build_mobilenetv2, defaults={"alpha": 1.0, "dropout": 0.2}, min_size=32,
    description="MobileNetV2 (keras.applications, flat graph, random init or --weights)",
))
