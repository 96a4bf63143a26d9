"""Inference backends, one registry entry each, chosen by the model file's suffix.

Importing this package imports no engine: each backend imports its engine in ``load``.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgemri.errors import ModelFileError
from edgemri.registry import Registry
from edgemri.runtime.backends.base import Backend, TensorInfo
from edgemri.runtime.backends.litert import LiteRTBackend
from edgemri.runtime.backends.onnxruntime import OnnxRuntimeBackend
from edgemri.runtime.backends.openvino import OpenVINOBackend

BACKENDS: Registry[type[Backend]] = Registry("backend")
for _cls in (LiteRTBackend, OnnxRuntimeBackend, OpenVINOBackend):
    BACKENDS.add(_cls.name, _cls)


def backend_for(path: str | os.PathLike[str], name: str | None = None) -> type[Backend]:
    """The backend class for ``path``: ``name`` if given, else the one owning its suffix."""
    if name:
        return BACKENDS.get(name)
    suffix = Path(path).suffix.lower()
    classes = [BACKENDS.get(n) for n in BACKENDS.names()]
    for cls in classes:
        if suffix in cls.suffixes:
            return cls
    known = ", ".join(s for c in classes for s in c.suffixes)
    raise ModelFileError(f"{path}: no backend runs {suffix or 'files without a suffix'!r} models",
                         f"Use one of: {known}")


__all__ = ["BACKENDS", "Backend", "TensorInfo", "backend_for"]
