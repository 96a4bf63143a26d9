"""THE table of conversion targets: dispatch, CLI choices, verification thresholds, docs and the
benchmark all read ``TARGETS``; a new target is one entry here (``TARGETS.add(Target(...))``).

Each target names the file format it writes (``edgemri.runtime.formats``), which gives its
artifact's file name. Thresholds: float targets must follow the FP32 model almost exactly (top-1
agreement and a small max probability difference); quantized targets must keep top-1 agreement
>= 0.98 (the ``--min-agreement`` default of the issue) and have no probability-difference gate.
``--min-agreement`` overrides the agreement threshold of every target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgemri.registry import Registry

if TYPE_CHECKING:
    from edgemri.convert.context import ConvertContext, ConvertOptions
    from edgemri.runtime.formats import Format
    from edgemri.runtime.manifest import Manifest

Converter = Callable[["ConvertContext", Path], "Manifest"]

#: I/O tensor types of the full-integer TFLite targets (``convert --io``); int8 inside either way.
#: uint8 is the default because the standard clients accept nothing else for a quantized image
#: model (MediaPipe Tasks on Android/iOS/web/Python, the Android Studio ML binding); edgemri's own
#: runtime, the Android core and the Pi read uint8 and int8 alike, at the cost of one QUANTIZE op
#: at each end. ``--io int8`` keeps the symmetric int8 I/O that some NPU toolchains want.
IO_TYPES = ("int8", "uint8", "float32")
DEFAULT_IO = "uint8"


def _lazy(module: str, func: str) -> Converter:
    """Import the converter module only when the target runs (keeps `edgemri --help` light)."""

    def run(ctx: ConvertContext, path: Path) -> Manifest:
        import importlib

        return getattr(importlib.import_module(f"edgemri.convert.{module}"), func)(ctx, path)

    run.__name__ = f"{module}.{func}"
    return run


@dataclass(frozen=True)
class Target:
    """One conversion target. ``max_prob_diff_fp16`` replaces ``max_prob_diff`` for a target whose
    weights ``--ov-fp16`` compresses to float16 (None: the option does not change this target)."""

    name: str
    format: str  # a FORMATS name: the artifact's file name and suffix come from it
    description: str
    needs: tuple[str, ...]  # import names (edgemri.extras.require) the converter uses
    converter: Converter
    min_agreement: float
    max_prob_diff: float | None = None
    quantized: bool = False
    max_prob_diff_fp16: float | None = None

    @property
    def file_format(self) -> Format:
        """The ``FORMATS`` entry (imported here: reading the table for --help and docs stays numpy-free,
        and ``edgemri.runtime`` imports numpy)."""
        from edgemri.runtime.formats import FORMATS

        return FORMATS.get(self.format)

    @property
    def suffix(self) -> str:
        return self.file_format.suffix

    @property
    def filename(self) -> str:
        return self.file_format.filename

    def artifact(self, export_dir: Path) -> Path:
        """``RUN/export/<target>/model<suffix>``."""
        return export_dir / self.name / self.filename

    def thresholds(self, options: ConvertOptions) -> tuple[float, float | None]:
        """(min top-1 agreement, max probability difference or None) under these convert options."""
        agreement = options.min_agreement if options.min_agreement is not None else self.min_agreement
        if options.ov_fp16 and self.max_prob_diff_fp16 is not None:
            return agreement, self.max_prob_diff_fp16
        return agreement, self.max_prob_diff


TARGETS: Registry[Target] = Registry("conversion target")

_TF = ("tensorflow",)
_ONNX = (*_TF, "tf2onnx", "onnx", "onnxruntime")
_OV = (*_TF, "openvino")
TARGETS.add(Target("tflite-fp32", "tflite", "LiteRT flatbuffer, float32", _TF,
                   _lazy("tflite", "convert_fp32"), 0.995, 1e-3))
TARGETS.add(Target("tflite-fp16", "tflite", "LiteRT, float16 weights (float32 I/O)", _TF,
                   _lazy("tflite", "convert_fp16"), 0.99, 0.05))
TARGETS.add(Target("tflite-dynamic", "tflite",
                   "LiteRT dynamic-range: int8 weights, float activations and I/O", _TF,
                   _lazy("tflite", "convert_dynamic"), 0.98, None, True))
TARGETS.add(Target("tflite-int8", "tflite",
                   "LiteRT full integer: int8 weights, activations, input and output "
                   "(QAT model when RUN/qat exists, else PTQ)", _TF,
                   _lazy("tflite", "convert_int8"), 0.98, None, True))
TARGETS.add(Target("tflite-int8-ptq", "tflite",
                   "LiteRT full integer, post-training quantized from the FP32 model even "
                   "when RUN/qat exists (QAT vs PTQ)", _TF,
                   _lazy("tflite", "convert_int8_ptq"), 0.98, None, True))
TARGETS.add(Target("onnx", "onnx", "ONNX via tf2onnx, float32 (NHWC; --nchw transposes the input)", _ONNX,
                   _lazy("onnx_export", "convert_onnx"), 0.995, 1e-3))
TARGETS.add(Target("onnx-int8", "onnx", "ONNX QDQ int8 (onnxruntime static quantization, float32 I/O)",
                   _ONNX, _lazy("onnx_export", "convert_onnx_int8"), 0.98, None, True))
TARGETS.add(Target("openvino", "openvino", "OpenVINO IR xml/bin (--ov-fp16: float16 weights)", _OV,
                   _lazy("openvino_export", "convert_openvino"), 0.995, 1e-3, max_prob_diff_fp16=0.05))
TARGETS.add(Target("openvino-int8", "openvino", "OpenVINO IR quantized by NNCF (FakeQuantize, float32 I/O)",
                   (*_OV, "nncf"), _lazy("openvino_export", "convert_openvino_int8"), 0.98, None, True))

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
