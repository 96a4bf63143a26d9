"""One small interface over every inference engine the runtime can use.

A backend loads one model file and runs one input tensor; everything else (manifest,
preprocessing, quantization of the input, batching, timing) lives in ``Predictor`` so that every
engine is driven the same way and benchmarks compare engines, not glue code.
"""

from __future__ import annotations

import itertools
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgemri.errors import ModelFileError, UsageError
from edgemri.registry import Registry
from edgemri.runtime.formats import FORMATS, Format
from edgemri.runtime.manifest import Quantization


@dataclass(frozen=True)
class TensorInfo:
    """What the model says about one input or output tensor.

    ``shape`` uses -1 for dynamic dimensions; ``quantization`` is set for int8/uint8 tensors
    whose affine parameters the model carries (TFLite).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    quantization: Quantization | None = None

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the model is frozen to, or None when it is dynamic."""
        return self.shape[0] if self.shape and self.shape[0] > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                "quantization": self.quantization.to_dict() if self.quantization else None}


@dataclass(frozen=True)
class Option:
    """One runtime setting a backend takes through ``load(path, threads, **options)``, as data.

    ``values`` are the accepted values (None, the default, leaves the engine's own default, which
    is ``engine_default``). ``tuned``: ``edgemri tune`` tries every value and may record the winner
    as a hint; precision is not tuned, because a faster, less exact run is the user's opt-in.
    """

    name: str
    values: tuple[Any, ...]
    engine_default: Any
    help: str
    tuned: bool = True

    def accepts(self, value: Any) -> bool:
        """Exact match, type included: ``1`` is not ``True`` and ``"true"`` is not a boolean."""
        return any(type(value) is type(v) and value == v for v in self.values)


@dataclass
class Backend(ABC):
    """A loaded model. Subclasses set the class attributes and implement ``_open``/``run``.

    Which files a backend runs, and the pip extra it needs, are its format's (``file_format``):
    the format table names the backend, so the two cannot disagree. ``OPTIONS`` lists the
    backend's runtime settings; ``settings`` holds the ones asked for (checked against it).
    """

    name: ClassVar[str]
    distributions: ClassVar[tuple[str, ...]] = ()
    OPTIONS: ClassVar[tuple[Option, ...]] = ()

    path: Path
    threads: int | None
    settings: dict[str, Any] = field(default_factory=dict)
    input: TensorInfo = field(init=False)
    output: TensorInfo = field(init=False)

    def __post_init__(self) -> None:
        self.settings = self.check_options(self.settings)

    @classmethod
    def load(cls, path: str | os.PathLike[str], threads: int | None = None, **options: Any) -> Backend:
        """Open ``path``; a missing/empty/corrupt file raises ``ModelFileError`` naming it.

        ``options`` are the backend's own settings (``OPTIONS``: LiteRT ``xnnpack``, ONNX Runtime
        ``graph_optimization``, OpenVINO ``performance_hint`` / ``precision``); an unknown name or
        value is a one-line ``UsageError`` naming the valid ones. None means the engine's default.
        """
        path = Path(path)
        backend = cls(path=path, threads=threads, settings=options)
        check_model_file(path)
        backend._open()
        return backend

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` with None values dropped, or ``UsageError`` for an unknown name or value."""
        known = {o.name: o for o in cls.OPTIONS}
        for key, value in options.items():
            if key not in known:
                names = ", ".join(known) or "none"
                raise UsageError(f"the {cls.name} backend has no option {key!r}", f"Its options: {names}")
            if value is not None and not known[key].accepts(value):
                valid = ", ".join(str(v) for v in known[key].values)
                raise UsageError(f"{cls.name} option {key}={value!r} is not valid", f"Choose one of: {valid}")
        return {k: v for k, v in options.items() if v is not None}

    @classmethod
    def configurations(cls, threads: list[int] | tuple[int, ...]) -> list[tuple[int, dict[str, Any]]]:
        """Every (threads, options) pair ``edgemri tune`` measures: tuned options x thread counts."""
        tuned = [o for o in cls.OPTIONS if o.tuned]
        grid: list[tuple[Any, ...]] = list(itertools.product(*(o.values for o in tuned)))
        combos = [dict(zip((o.name for o in tuned), values)) for values in grid]
        return [(int(n), combo) for n in threads for combo in combos]

    def options(self) -> dict[str, Any]:
        """The option values in force: the ones asked for, else the engine's default."""
        return {o.name: self._option_value(o) for o in self.OPTIONS}

    def _option_value(self, option: Option) -> Any:
        return self.settings.get(option.name, option.engine_default)

    @classmethod
    def file_format(cls) -> Format:
        """The file format this backend runs (the ``FORMATS`` entry naming it)."""
        return next(f for f in FORMATS.entries() if f.backend == cls.name)

    @abstractmethod
    def _open(self) -> None:
        """Load the model and set ``self.input`` / ``self.output``."""

    @abstractmethod
    def run(self, x: np.ndarray) -> np.ndarray:
        """Run one input batch (already in the model's dtype and layout); return output 0."""

    def xnnpack(self) -> bool | None:
        """Whether the XNNPACK delegate is in use (None: not applicable to this engine)."""
        return None

    def engine(self) -> str:
        """The Python module that actually runs the model."""
        return self.name

    def info(self) -> dict[str, Any]:
        """What a benchmark report needs to say about how this model ran."""
        return {
            "backend": self.name,
            "engine": self.engine(),
            "versions": package_versions(("numpy", *self.distributions)),
            "threads": self.threads,
            "xnnpack": self.xnnpack(),
            "options": self.options(),
            "path": str(self.path),
            "input": self.input.to_dict(),
            "output": self.output.to_dict(),
        }

    def corrupt(self, exc: BaseException) -> ModelFileError:
        """The error for a file the engine refused: one line, the file, what to do."""
        detail = " ".join(str(exc).split())[:300]
        return ModelFileError(
            f"cannot load {self.name} model {self.path}: {type(exc).__name__}: {detail}",
            "The file looks truncated or corrupt, or is not a model for this backend; export it again",
        )


#: every backend class, by name; each backend module adds its class (the package imports them in order)
BACKENDS: Registry[type[Backend]] = Registry("backend")


def check_model_file(path: Path) -> None:
    if not path.exists():
        raise ModelFileError(f"model file {path} not found")
    if not path.is_file():
        raise ModelFileError(f"model path {path} is not a file")
    if path.stat().st_size == 0:
        raise ModelFileError(f"model file {path} is empty", "Export the model again")


def package_versions(distributions: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of the given distributions (absent ones are left out)."""
    out: dict[str, str] = {}
    for dist in distributions:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def dtype_name(dtype: Any) -> str:
    """numpy dtype / type / engine string -> 'float32' | 'int8' | 'uint8' | other numpy name."""
    return np.dtype(dtype).name
