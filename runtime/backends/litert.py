"""TFLite models through LiteRT: ai_edge_litert, else tflite_runtime, else tensorflow.lite.

The first two are small wheels (the Raspberry Pi path); TensorFlow is a last resort for a dev
box. The interpreter is created with the AUTO op resolver, which applies the XNNPACK delegate
by default on CPU; ``xnnpack()`` reports whether it really took the graph (a ``DELEGATE`` node
appears in the execution plan). The ``xnnpack`` option (``load(path, threads, xnnpack=False)``,
or a tuned manifest hint) runs the builtin kernels without it: on x86 the delegate made the
ConvMixer (9x9 depthwise) int8 model up to 14x slower (docs/runtime.md). The environment variable
``EDGEMRI_XNNPACK=0|1`` overrides the option and the hints, everywhere.

Precision: float models compute in float32 either way. XNNPACK computes a float32 graph in fp16
only when its delegate is told to (``TFLITE_XNNPACK_DELEGATE_FLAG_FORCE_FP16``), which the
interpreter's default delegate is not; ``edgemri tune`` checks the outputs of both paths agree.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgemri.errors import MissingExtraError, UsageError
from edgemri.extras import install_hint
from edgemri.runtime.backends.base import BACKENDS, Backend, Option, TensorInfo, dtype_name
from edgemri.runtime.manifest import Quantization

#: the environment override of the ``xnnpack`` option: its accepted values
XNNPACK_ENV = "EDGEMRI_XNNPACK"
_ENV_VALUES = {"0": False, "false": False, "off": False, "1": True, "true": True, "on": True}


def xnnpack_env() -> bool | None:
    """``EDGEMRI_XNNPACK`` as a boolean (None when unset or empty); a bad value is a ``UsageError``."""
    raw = os.environ.get(XNNPACK_ENV, "").strip().lower()
    if not raw:
        return None
    if raw not in _ENV_VALUES:
        raise UsageError(f"{XNNPACK_ENV}={os.environ[XNNPACK_ENV]!r} is not valid",
                         "Use 0 (builtin kernels) or 1 (XNNPACK), or unset it")
    return _ENV_VALUES[raw]

#: import path of the Interpreter class, in order of preference, and its distribution
INTERPRETERS: tuple[tuple[str, str], ...] = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
    ("tensorflow.lite", "tensorflow"),
)


def find_interpreter() -> tuple[Any, str, str]:
    """(Interpreter class, module name, distribution) of the first engine that imports.

    An engine that is installed but fails to import (a wheel built for another numpy, a missing
    shared library) is reported with its real error, not as "not installed".
    """
    broken = []
    for module_name, dist in INTERPRETERS:
        try:
            module = importlib.import_module(module_name)
            return module.Interpreter, module_name, dist
        except ImportError as exc:
            if not _absent(exc, module_name):
                broken.append(f"{module_name}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
    hint = install_hint(LiteRTBackend.file_format().extra)
    if broken:
        raise MissingExtraError(f"no TFLite interpreter could be imported ({'; '.join(broken)})", hint)
    tried = ", ".join(m.removesuffix(".interpreter") for m, _ in INTERPRETERS)
    raise MissingExtraError(f"no TFLite interpreter is installed (tried {tried})", hint)


def _absent(exc: ImportError, module_name: str) -> bool:
    """True when the import failed because ``module_name`` (or a parent package) is not installed."""
    missing = getattr(exc, "name", None)
    return isinstance(exc, ModuleNotFoundError) and bool(missing) and (
        module_name == missing or module_name.startswith(f"{missing}."))


def _tensor(detail: dict[str, Any]) -> TensorInfo:
    shape = tuple(int(d) for d in detail.get("shape_signature", detail["shape"]))
    dtype = dtype_name(detail["dtype"])
    scale, zero = detail.get("quantization", (0.0, 0))
    quant = Quantization(float(scale), int(zero)) if dtype in ("int8", "uint8") and scale else None
    return TensorInfo(name=str(detail["name"]), shape=shape, dtype=dtype, quantization=quant)


@dataclass
class LiteRTBackend(Backend):
    name: ClassVar[str] = "litert"
    distributions: ClassVar[tuple[str, ...]] = ()
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option("xnnpack", (True, False), True, "apply the XNNPACK delegate (False: builtin kernels)"),
    )

    def _option_value(self, option: Option) -> Any:
        """``xnnpack``: the environment override, else the option, else the engine's default (on).

        (``xnnpack()`` reports whether the delegate really took the graph.)
        """
        env = xnnpack_env() if option.name == "xnnpack" else None
        return super()._option_value(option) if env is None else env

    def _open(self) -> None:
        interpreter_cls, self._module, dist = find_interpreter()
        self.distributions = (dist,)  # type: ignore[misc]  # the one actually used
        try:
            self._interp = interpreter_cls(model_path=str(self.path), num_threads=self.threads,
                                           **self._resolver_option())
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise self.corrupt(exc) from exc
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        self._in, self._out = inputs[0], outputs[0]
        self.input, self.output = _tensor(self._in), _tensor(self._out)
        self._shape = tuple(int(d) for d in self._in["shape"])

    def _resolver_option(self) -> dict[str, Any]:
        """No default delegates (XNNPACK) when the option (or ``EDGEMRI_XNNPACK``) says so."""
        if self.options()["xnnpack"]:
            return {}
        module = importlib.import_module(self._module)
        resolver = getattr(module, "OpResolverType", None) or getattr(getattr(module, "experimental", None),
                                                                      "OpResolverType", None)
        if resolver is None:
            return {}
        return {"experimental_op_resolver_type": resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES}

    def run(self, x: np.ndarray) -> np.ndarray:
        if x.shape != self._shape:  # dynamic batch: resize once per new batch size
            self._interp.resize_tensor_input(self._in["index"], list(x.shape))
            self._interp.allocate_tensors()
            self._shape = tuple(x.shape)
        self._interp.set_tensor(self._in["index"], x)
        self._interp.invoke()
        return self._interp.get_tensor(self._out["index"])

    def xnnpack(self) -> bool | None:
        try:
            return any(op.get("op_name") == "DELEGATE" for op in self._interp._get_ops_details())
        except Exception:  # noqa: BLE001 - private API: absent in some interpreter builds
            return None

    def engine(self) -> str:
        return self._module


BACKENDS.add(LiteRTBackend)
