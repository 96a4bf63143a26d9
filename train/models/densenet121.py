"""DenseNet-121 (Huang et al. 2017): the heavy baseline of the published notebooks."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from edgemri.train.models.common import ModelEntry, flat_application
from edgemri.train.models.registry import MODELS


def build_densenet121(keras: ModuleType, input_shape: tuple[int, int, int], num_classes: int,
                      dropout: float = 0.2) -> Any:
    return flat_application(keras, "DenseNet121", input_shape, num_classes, "densenet121", dropout)


MODELS.add(ModelEntry(
    name="densenet121", builder=build_densenet121, defaults={"dropout": 0.2}, min_size=32,
    description="DenseNet-121 baseline of the published notebooks (keras.applications, flat)",
))
