"""Model registry: one entry per architecture, one small module each (``MODELS``, see registry.py).

``build(name, input_shape, num_classes, keras=None, **opts)`` returns a flat functional model whose
input is float32 NHWC already normalized by the manifest (no Rescaling/augmentation inside) and
whose output is float32 softmax probabilities. Builders use only APIs present in both Keras 3 and
tf_keras (QAT passes ``keras=tf_keras``) and name every layer explicitly, so weights copy by name
between the two.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from edgemri.errors import UsageError
from edgemri.train.models.common import ModelEntry
from edgemri.train.models.registry import MODELS


def build(name: str, input_shape: tuple[int, int, int], num_classes: int, keras: ModuleType | None = None,
          **opts: Any) -> Any:
    """Build architecture ``name``; unknown options, too-small inputs and <2 classes are UsageErrors."""
    entry = MODELS.get(name)
    if keras is None:
        import keras as keras_module

        keras = keras_module
    h, w = int(input_shape[0]), int(input_shape[1])
    if min(h, w) < entry.min_size:
        raise UsageError(
            f"image size {h}x{w} is below the minimum {entry.min_size}px of {name}",
            f"Use --image-size {entry.min_size} or more",
        )
    if num_classes < 2:
        raise UsageError(f"{name} needs at least 2 classes, got {num_classes}")
    options = entry.resolve_options(opts)
    return entry.builder(keras, tuple(input_shape), int(num_classes), **options)


def default_options(name: str) -> dict[str, Any]:
    """The options an architecture takes, with their defaults (for config.json and --help)."""
    return dict(MODELS.get(name).defaults)


__all__ = ["MODELS", "ModelEntry", "build", "default_options"]
