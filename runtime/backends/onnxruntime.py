"""ONNX models through onnxruntime's CPU execution provider.

Float models compute in float32: the CPU provider (MLAS) has no reduced-precision mode unless
asked for one (the opt-in ``mlas.enable_gemm_fastmath_arm64_bfloat16`` session setting, ARM64
only, which this backend does not set).

Options: ``graph_optimization`` (``basic``, ``extended``, ``all``; onnxruntime's default is
``all``) and the intra-op thread count (``threads``); ``edgemri tune`` measures them per model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgemri.extras import require
from edgemri.runtime.backends.base import BACKENDS, Backend, Option, TensorInfo

#: ``graph_optimization`` values -> onnxruntime's GraphOptimizationLevel names
GRAPH_OPTIMIZATION = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}

_ONNX_TYPES = {"tensor(float)": "float32", "tensor(int8)": "int8", "tensor(uint8)": "uint8",
               "tensor(float16)": "float16", "tensor(double)": "float64"}


def _tensor(arg: Any) -> TensorInfo:
    shape = tuple(d if isinstance(d, int) and d > 0 else -1 for d in arg.shape)
    return TensorInfo(name=arg.name, shape=shape, dtype=_ONNX_TYPES.get(arg.type, arg.type))


@dataclass
class OnnxRuntimeBackend(Backend):
    name: ClassVar[str] = "onnxruntime"
    distributions: ClassVar[tuple[str, ...]] = ("onnxruntime",)
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option("graph_optimization", tuple(GRAPH_OPTIMIZATION), "all",
               "onnxruntime graph optimization level (fusions, constant folding, layout changes)"),
    )

    def _open(self) -> None:
        ort = require("onnxruntime", self.file_format().extra, "running .onnx models")
        opts = ort.SessionOptions()
        if "graph_optimization" in self.settings:
            level = GRAPH_OPTIMIZATION[self.settings["graph_optimization"]]
            opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        if self.threads:
            opts.intra_op_num_threads = int(self.threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=opts,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise self.corrupt(exc) from exc
        self.input = _tensor(self._session.get_inputs()[0])
        self.output = _tensor(self._session.get_outputs()[0])

    def run(self, x: np.ndarray) -> np.ndarray:
        return self._session.run([self.output.name], {self.input.name: x})[0]


BACKENDS.add(OnnxRuntimeBackend)
