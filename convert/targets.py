"""THE table of conversion targets: dispatch, CLI choices, verification thresholds, docs and the
benchmark all read ``TARGETS``; adding a format means adding one row here.

Thresholds: float targets must follow the FP32 model almost exactly (top-1 agreement and a
small max probability difference); quantized targets must keep top-1 agreement >= 0.98 (the
``--min-agreement`` default of the issue) and have no probability-difference gate. ``--min-agreement``
overrides the agreement threshold of every target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgemri.registry import Registry

if TYPE_CHECKING:
    from edgemri.convert.context import ConvertContext
    from edgemri.runtime.manifest import Manifest

Converter = Callable[["ConvertContext", Path], "Manifest"]


def _lazy(module: str, func: str) -> Converter:
    """Import the converter module only when the target runs (keeps `edgemri --help` light)."""

    def run(ctx: ConvertContext, path: Path) -> Manifest:
        import importlib

        return getattr(importlib.import_module(f"edgemri.convert.{module}"), func)(ctx, path)

    run.__name__ = f"{module}.{func}"
    return run


@dataclass(frozen=True)
class Target:
    name: str
    suffix: str
    description: str
    needs: tuple[str, ...]  # import names (edgemri.extras.require) the converter uses
    converter: Converter
    min_agreement: float
    max_prob_diff: float | None = None
    quantized: bool = False

    @property
    def filename(self) -> str:
        return f"model{self.suffix}"

    def artifact(self, export_dir: Path) -> Path:
        """``RUN/export/<target>/model<suffix>``."""
        return export_dir / self.name / self.filename


TARGETS: Registry[Target] = Registry("conversion target")

_TF = ("tensorflow",)
for _t in (
    Target("tflite-fp32", ".tflite", "LiteRT flatbuffer, float32", _TF,
           _lazy("tflite", "convert_fp32"), 0.995, 1e-3),
    Target("tflite-fp16", ".tflite", "LiteRT, float16 weights (float32 I/O)", _TF,
           _lazy("tflite", "convert_fp16"), 0.99, 0.05),
    Target("tflite-dynamic", ".tflite", "LiteRT dynamic-range: int8 weights, float activations and I/O", _TF,
           _lazy("tflite", "convert_dynamic"), 0.98, None, True),
    Target("tflite-int8", ".tflite", "LiteRT full integer: int8 weights, activations, input and output "
           "(QAT model when RUN/qat exists, else PTQ)", _TF, _lazy("tflite", "convert_int8"), 0.98, None, True),
    Target("tflite-int8-ptq", ".tflite", "LiteRT full integer, post-training quantized from the FP32 model even "
           "when RUN/qat exists (QAT vs PTQ)", _TF, _lazy("tflite", "convert_int8_ptq"), 0.98, None, True),
    Target("onnx", ".onnx", "ONNX via tf2onnx, float32 (NHWC; --nchw transposes the input)",
           (*_TF, "tf2onnx", "onnx", "onnxruntime"), _lazy("onnx_export", "convert_onnx"), 0.995, 1e-3),
    Target("onnx-int8", ".onnx", "ONNX QDQ int8 (onnxruntime static quantization, float32 I/O)",
           (*_TF, "tf2onnx", "onnx", "onnxruntime"), _lazy("onnx_export", "convert_onnx_int8"), 0.98, None, True),
    Target("openvino", ".xml", "OpenVINO IR xml/bin (--ov-fp16: float16 weights)", (*_TF, "openvino"),
           _lazy("openvino_export", "convert_openvino"), 0.995, 1e-3),
    Target("openvino-int8", ".xml", "OpenVINO IR quantized by NNCF (FakeQuantize, float32 I/O)",
           (*_TF, "openvino", "nncf"), _lazy("openvino_export", "convert_openvino_int8"), 0.98, None, True),
):
    TARGETS.add(_t.name, _t)

ALL = "all"


def resolve(names: list[str]) -> list[Target]:
    """CLI names -> targets in table order, ``all`` expanded, duplicates dropped, unknown -> UsageError."""
    if not names:
        from edgemri.errors import UsageError

        raise UsageError("no --target given", f"Choose from: {', '.join(TARGETS.names())}, {ALL}")
    wanted: list[str] = []
    for name in names:
        for n in TARGETS.names() if name == ALL else [TARGETS.get(name).name]:
            if n not in wanted:
                wanted.append(n)
    return [TARGETS.get(n) for n in wanted]
