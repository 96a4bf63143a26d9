"""MobileNet v1 (Howard et al. 2017): a baseline the published notebooks use."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from edgemri.train.models.common import ModelEntry, flat_application
from edgemri.train.models.registry import MODELS


def build_mobilenet(keras: ModuleType, input_shape: tuple[int, int, int], num_classes: int,
                    alpha: float = 1.0, dropout: float = 0.2) -> Any:
    # Our head owns the dropout; the application's own dropout applies only to its top.
    return flat_application(keras, "MobileNet", input_shape, num_classes, "mobilenet", dropout, alpha=alpha)


MODELS.add(ModelEntry(
    name="mobilenet", builder=build_mobilenet, defaults={"alpha": 1.0, "dropout": 0.2}, min_size=32,
    description="MobileNet v1 baseline of the published notebooks (keras.applications, flat)",
))
