"""OpenVINO targets: ``openvino`` (IR from the SavedModel) and ``openvino-int8`` (NNCF PTQ).

``ov.convert_model`` reads the SavedModel directly. NNCF no longer has a TensorFlow backend, so
int8 quantizes the converted OpenVINO model (``nncf.quantize`` with an ``nncf.Dataset`` of the
calibration images), producing FakeQuantize nodes that the CPU plugin runs in int8.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgemri.convert.artifacts import artifact_manifest, write_openvino
from edgemri.convert.context import ConvertContext, exc_summary
from edgemri.errors import ConversionError
from edgemri.extras import require
from edgemri.runtime.manifest import Manifest

OV_TOOLS = ("openvino", "nncf")


def _ov_model(ctx: ConvertContext) -> Any:
    ov = require("openvino", "openvino", "OpenVINO conversion")
    try:
        return ov.convert_model(os.fspath(ctx.saved_model))
    except Exception as exc:
        raise ConversionError(f"openvino: convert_model failed: {exc_summary(exc)}",
                              "Check `edgemri inspect` of the tflite-fp32 artifact for unusual ops") from exc


def convert_openvino(ctx: ConvertContext, path: Path) -> Manifest:
    fp16 = ctx.options.ov_fp16
    manifest = artifact_manifest(ctx.manifest, "openvino", "openvino",
                                 extra={"weights": "float16 (compressed)" if fp16 else "float32"}, tools=OV_TOOLS)
    write_openvino(path, _ov_model(ctx), manifest, compress_to_fp16=fp16)
    return manifest


def convert_openvino_int8(ctx: ConvertContext, path: Path) -> Manifest:
    nncf = require("nncf", "convert", "OpenVINO int8 quantization")
    calib = ctx.calibration
    model = _ov_model(ctx)
    dataset = nncf.Dataset([calib.x[i:i + 1] for i in range(len(calib.x))])
    try:
        quantized = nncf.quantize(model, dataset, subset_size=len(calib.x))
    except Exception as exc:
        raise ConversionError(f"openvino-int8: nncf.quantize failed: {exc_summary(exc)}",
                              "Check the calibration data (--calib)") from exc
    n_fq = sum(op.get_type_name() == "FakeQuantize" for op in quantized.get_ops())
    if not n_fq:
        raise ConversionError("openvino-int8: NNCF inserted no FakeQuantize nodes",
                              "The graph has no quantizable ops; use the openvino target instead")
    extra = {"weights": "int8", "scheme": "NNCF FakeQuantize (float32 I/O)", "fake_quantize": n_fq,
             "calibration": calib.summary()}
    manifest = artifact_manifest(ctx.manifest, "openvino", "openvino-int8", extra=extra, tools=OV_TOOLS)
    write_openvino(path, quantized, manifest, compress_to_fp16=False)
    return manifest
