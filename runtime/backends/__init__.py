"""Inference backends, one registry entry each; a model file's format names the backend that runs it.

Each backend module registers its class (``BACKENDS.add``); this package imports them in a fixed
order so ``BACKENDS.names()`` does not depend on which module a caller happened to import first.
Importing this package imports no engine: each backend imports its engine in ``load``.
"""

from __future__ import annotations

import os

from edgemri.runtime.backends import litert, onnxruntime, openvino  # noqa: F401 - each registers its class
from edgemri.runtime.backends.base import BACKENDS, Backend, TensorInfo
from edgemri.runtime.formats import format_for_path


def backend_for(path: str | os.PathLike[str], name: str | None = None) -> type[Backend]:
    """The backend class for ``path``: ``name`` if given, else the one its file format names."""
    return BACKENDS.get(name or format_for_path(path, having="backend").backend)  # type: ignore[arg-type]


__all__ = ["BACKENDS", "Backend", "TensorInfo", "backend_for"]
