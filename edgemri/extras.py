"""Lazy imports of optional dependencies.

The base install (numpy, pillow, typer) is what a Raspberry Pi gets. TensorFlow, tfmot, ONNX,
OpenVINO and LiteRT are extras: they are imported only inside the function that needs them,
through ``require``, so a missing one becomes an error that names the exact pip command.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from edgemri.errors import MissingExtraError

#: import name -> (extra that provides it, what it is for)
EXTRA_OF: dict[str, str] = {
    "tensorflow": "train",
    "keras": "train",
    "tf_keras": "train",
    "tensorflow_model_optimization": "train",
    "matplotlib": "plot",
    "onnx": "convert",
    "tf2onnx": "convert",
    "nncf": "convert",
    "onnxruntime": "onnx",
    "openvino": "openvino",
    "ai_edge_litert": "litert",
    "tflite_runtime": "tflite",
    "pydicom": "dicom",
}


def install_hint(extra: str) -> str:
    return f'Run: pip install "edgemri[{extra}]"'


def require(module: str, extra: str | None = None, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise ``MissingExtraError`` naming the extra to install."""
    top = module.split(".")[0]
    extra = extra or EXTRA_OF.get(top, "all")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" (needed for {purpose})" if purpose else ""
        raise MissingExtraError(
            f"{top} is not installed{what}: {exc}", install_hint(extra)
        ) from exc


def available(module: str) -> bool:
    """True when ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
