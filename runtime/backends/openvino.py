"""OpenVINO IR (``model.xml`` + ``model.bin``) through openvino's CPU plugin.

The CPU plugin's default inference precision is bf16 on CPUs with AMX or AVX512_BF16 (and f16 on
some ARM cores), silently: a float model then no longer computes what it was verified to compute.
This backend asks for ``INFERENCE_PRECISION_HINT=f32`` unless told otherwise (``precision``), and
``info()`` reports the precision the compiled model really uses (a CPU without native f16 falls
back to bf16 or f32 when f16 is asked for). ``performance_hint`` (``LATENCY``, the CPU plugin's
default, or ``THROUGHPUT``) is the tuned option; precision is never tuned, only opted into.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgemri.errors import ModelFileError
from edgemri.extras import require
from edgemri.runtime.backends.base import BACKENDS, Backend, Option, TensorInfo

#: accepted values of ``precision`` (OpenVINO's element type names for INFERENCE_PRECISION_HINT)
PRECISIONS = ("f32", "bf16", "f16")
#: accepted values of ``performance_hint`` (the CPU plugin's PERFORMANCE_HINT)
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT")


def _tensor(port: Any) -> TensorInfo:
    shape = tuple(d.get_length() if d.is_static else -1 for d in port.get_partial_shape())
    dtype = port.get_element_type().to_dtype().name
    names = port.get_names()
    return TensorInfo(name=min(names) if names else "", shape=shape, dtype=dtype)


@dataclass
class OpenVINOBackend(Backend):
    name: ClassVar[str] = "openvino"
    distributions: ClassVar[tuple[str, ...]] = ("openvino",)
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option("performance_hint", PERFORMANCE_HINTS, "LATENCY", "CPU plugin performance hint (streams)"),
        # edgemri's default, not the plugin's: the plugin would pick bf16 on AMX/AVX512_BF16 CPUs
        Option("precision", PRECISIONS, "f32", "inference precision (bf16/f16: opt-in only)", tuned=False),
    )

    @property
    def precision(self) -> str:
        return str(self.options()["precision"])

    def compile_config(self) -> dict[str, Any]:
        """The CPU plugin settings: precision, the performance hint when set, and the thread count."""
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": self.precision}
        if "performance_hint" in self.settings:
            config["PERFORMANCE_HINT"] = self.settings["performance_hint"]
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = int(self.threads)
        return config

    def _open(self) -> None:
        ov = require("openvino", self.file_format().extra, "running OpenVINO .xml models")
        for weights in self.file_format().companion_paths(self.path):
            if not weights.is_file():
                raise ModelFileError(f"OpenVINO weights {weights} not found next to {self.path}",
                                     "Keep model.xml and model.bin together")
        try:
            core = ov.Core()
            self._compiled = core.compile_model(str(self.path), "CPU", self.compile_config())
        except Exception as exc:
            raise self.corrupt(exc) from exc
        self._request = self._compiled.create_infer_request()
        self.input = _tensor(self._compiled.input(0))
        self.output = _tensor(self._compiled.output(0))

    def inference_precision(self) -> str:
        """The precision the compiled model computes in ("f32", "bf16", ...), as the plugin reports it."""
        return self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()

    def run(self, x: np.ndarray) -> np.ndarray:
        self._request.infer({0: x})
        return np.array(self._request.get_output_tensor(0).data, copy=True)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "inference_precision": self.inference_precision()}


BACKENDS.add(OpenVINOBackend)
