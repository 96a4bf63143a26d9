"""THE table of model file formats: one ``Format`` entry per kind of model file edgemri reads or writes.

Everything that depends on "what kind of file is this" reads this table: the runtime backend a
file runs on and the pip extra it needs, the artifact file name a conversion target writes,
companion files that belong to the model (OpenVINO's ``.bin`` weights, counted in its size), how
the embedded manifest is read and written, and how ``edgemri inspect`` looks inside. A new format
is its entry here, its backend (``runtime/backends/``) and its converter (``convert/``).

The runtime imports this on a Raspberry Pi, so only the standard library is imported here: every
callable an entry holds is ``lazy`` (its module is imported on the first call), which also keeps
convert-only code (writers, inspectors) out of the runtime's import graph.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgemri.errors import ModelFileError
from edgemri.registry import Registry


def lazy(module: str, func: str) -> Callable[..., Any]:
    """``module.func``, imported on the first call: a table entry may name heavy or convert-only code."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), func)(*args, **kwargs)

    call.__name__ = func
    call.__qualname__ = f"{module}.{func}"
    return call


@dataclass(frozen=True)
class Format:
    """One model file format.

    ``read_manifest(path)`` returns the embedded manifest JSON text (None when the file carries
    none); ``write(path, model, manifest, ...)`` writes the model with its manifest embedded plus
    the sidecar (convert); ``inspect(path)`` returns the ``edgemri inspect`` dict. A capability a
    format lacks is None (the Keras source format has no runtime backend and no embedded manifest).
    """

    name: str
    description: str
    suffixes: tuple[str, ...]
    extra: str  # the pip extra that runs (or, for a source format, loads) it
    backend: str | None = None  # runtime backend name (edgemri.runtime.backends.BACKENDS)
    companions: tuple[str, ...] = ()  # suffixes of files that must sit beside the model (same stem)
    read_manifest: Callable[[Path], str | None] | None = None
    write: Callable[..., Path] | None = None
    inspect: Callable[[Path], dict[str, Any]] | None = None

    @property
    def suffix(self) -> str:
        """The suffix artifacts of this format are written with."""
        return self.suffixes[0]

    @property
    def filename(self) -> str:
        """The artifact file name: ``RUN/export/<target>/model<suffix>``."""
        return f"model{self.suffix}"

    def companion_paths(self, path: str | os.PathLike[str]) -> list[Path]:
        return [Path(path).with_suffix(s) for s in self.companions]

    def size(self, path: str | os.PathLike[str]) -> int:
        """Bytes on disk of the model file and every companion present beside it."""
        companions = [p for p in self.companion_paths(path) if p.is_file()]
        return Path(path).stat().st_size + sum(p.stat().st_size for p in companions)


FORMATS: Registry[Format] = Registry("model format")

FORMATS.add(Format(
    name="tflite", description="LiteRT (TFLite) flatbuffer", suffixes=(".tflite",), extra="litert",
    backend="litert", read_manifest=lazy("edgemri.runtime.embed", "tflite_manifest_text"),
    write=lazy("edgemri.convert.artifacts", "write_tflite"),
    inspect=lazy("edgemri.convert.inspect", "tflite_file_summary"),
))
FORMATS.add(Format(
    name="onnx", description="ONNX model", suffixes=(".onnx",), extra="onnx", backend="onnxruntime",
    read_manifest=lazy("edgemri.runtime.embed", "onnx_manifest_text"),
    write=lazy("edgemri.convert.artifacts", "write_onnx"),
    inspect=lazy("edgemri.convert.inspect", "onnx_summary"),
))
FORMATS.add(Format(
    name="openvino", description="OpenVINO IR (model.xml + model.bin weights)", suffixes=(".xml",),
    extra="openvino", backend="openvino", companions=(".bin",),
    read_manifest=lazy("edgemri.runtime.embed", "openvino_manifest_text"),
    write=lazy("edgemri.convert.artifacts", "write_openvino"),
    inspect=lazy("edgemri.convert.inspect", "openvino_summary"),
))
FORMATS.add(Format(
    name="keras", description="Keras 3 model (the trained source every target is converted from)",
    suffixes=(".keras",), extra="train",
))

#: what each optional capability lets edgemri do with a file, for the error when a format lacks it
_CAN = {"backend": "run", "read_manifest": "read an embedded manifest from", "inspect": "inspect"}


def _owner(suffix: str) -> Format | None:
    return next((f for f in FORMATS.entries() if suffix.lower() in f.suffixes), None)


def format_for_path(path: str | os.PathLike[str], having: str | None = None) -> Format:
    """The format owning ``path``'s suffix (case-insensitive).

    ``having`` ("backend", "read_manifest" or "inspect") accepts only formats with that capability.
    Anything else is a one-line ``ModelFileError`` listing the suffixes that would work.
    """
    suffix = Path(path).suffix.lower()
    usable = [f for f in FORMATS.entries() if having is None or getattr(f, having) is not None]
    fmt = _owner(suffix)
    if fmt is not None and fmt in usable:
        return fmt
    known = ", ".join(f"{s} ({f.name})" for f in usable for s in f.suffixes)
    if fmt is None:
        what = repr(suffix) if suffix else "(no suffix)"
        raise ModelFileError(f"{path}: unknown model file type {what}", f"Use one of: {known}")
    verb = _CAN.get(having or "", "use")
    raise ModelFileError(f"{path}: edgemri cannot {verb} {fmt.name} files ({suffix})",
                         f"Convert it with `edgemri convert`, then use one of: {known}")


def artifact_size(path: str | os.PathLike[str]) -> int:
    """Bytes on disk of a model, with its companions (an OpenVINO ``.bin``); other files: their size."""
    fmt = _owner(Path(path).suffix)
    return fmt.size(path) if fmt is not None else Path(path).stat().st_size
