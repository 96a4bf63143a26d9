"""OpenVINO IR (``model.xml`` + ``model.bin``) through openvino's CPU plugin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgemri.errors import ModelFileError
from edgemri.extras import require
from edgemri.runtime.backends.base import Backend, TensorInfo


def _tensor(port: Any) -> TensorInfo:
    shape = tuple(d.get_length() if d.is_static else -1 for d in port.get_partial_shape())
    dtype = port.get_element_type().to_dtype().name
    names = port.get_names()
    return TensorInfo(name=min(names) if names else "", shape=shape, dtype=dtype)


@dataclass
class OpenVINOBackend(Backend):
    name: ClassVar[str] = "openvino"
    suffixes: ClassVar[tuple[str, ...]] = (".xml",)
    extra: ClassVar[str] = "openvino"
    distributions: ClassVar[tuple[str, ...]] = ("openvino",)

    def _open(self) -> None:
        ov = require("openvino", "openvino", "running OpenVINO .xml models")
        weights = self.path.with_suffix(".bin")
        if not weights.is_file():
            raise ModelFileError(f"OpenVINO weights {weights} not found next to {self.path}",
                                 "Keep model.xml and model.bin together")
        config = {"INFERENCE_NUM_THREADS": int(self.threads)} if self.threads else {}
        try:
            core = ov.Core()
            self._compiled = core.compile_model(str(self.path), "CPU", config)
        except Exception as exc:  # noqa: BLE001 - openvino raises RuntimeError subclasses with long messages
            raise self.corrupt(exc) from None
        self._request = self._compiled.create_infer_request()
        self.input = _tensor(self._compiled.input(0))
        self.output = _tensor(self._compiled.output(0))

    def run(self, x: np.ndarray) -> np.ndarray:
        self._request.infer({0: x})
        return np.array(self._request.get_output_tensor(0).data, copy=True)
