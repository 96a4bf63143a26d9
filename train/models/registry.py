"""``MODELS``: the one table of architectures, in a module of its own so entry modules can import it.

Each architecture module calls ``MODELS.add(ModelEntry(name=..., ...))`` at import; the registry
imports the modules listed here on first read. Nothing here (or in the entry modules at import
time) loads Keras or numpy, so ``--help`` and the docs tables can read the table for free.
"""

from __future__ import annotations

from edgemri.registry import Registry
from edgemri.train.models.common import ModelEntry

MODELS: Registry[ModelEntry] = Registry("architecture", modules=(
    "edgemri.train.models.mobilenetv2",
    "edgemri.train.models.convmixer",
    "edgemri.train.models.simple_cnn",
    "edgemri.train.models.mobilenet",
    "edgemri.train.models.densenet121",
))
