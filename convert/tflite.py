"""LiteRT (TFLite) targets: fp32, fp16 weights, dynamic-range, full-integer int8.

All four start from the SavedModel export (fixed input signature) through
``tf.lite.TFLiteConverter.from_saved_model``. ``tflite-int8`` prefers the QAT SavedModel
(``RUN/qat/saved_model``) when the run has one: its ranges were learned, not estimated.
Every flatbuffer passes the compatibility check (builtin ops only, expected I/O dtypes) before
it is written, so nothing that stock LiteRT on a Pi or Android cannot run leaves this module.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edgemri.convert.artifacts import artifact_manifest, write_tflite
from edgemri.convert.context import ConvertContext, exc_summary
from edgemri.convert.inspect import tflite_summary
from edgemri.errors import ConversionError
from edgemri.extras import require
from edgemri.runtime.manifest import Manifest, Quantization

log = logging.getLogger("edgemri.convert")


def _converter(saved_model: Path) -> Any:
    tf = require("tensorflow", "convert", "TFLite conversion")
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # never SELECT_TF_OPS (Flex)
    return conv


def _run_converter(conv: Any, target: str) -> bytes:
    try:
        return bytes(conv.convert())
    except Exception as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if "error" in ln.lower()]
        raise ConversionError(f"{target}: the TFLite converter failed: {lines[0][:300] if lines else exc_summary(exc)}",
                              "A layer uses an op LiteRT builtins cannot express (or quantize); "
                              "see `edgemri inspect` and docs/convert.md") from exc


def _per_tensor(conv: Any, ctx: ConvertContext) -> None:
    if ctx.options.per_tensor:  # NNAPI / many NPUs reject per-channel weight quantization
        conv._experimental_disable_per_channel = True


def set_full_integer(conv: Any, representative: Any) -> None:
    """Full-integer settings: activations calibrated on ``representative``, int8 kernels and I/O."""
    tf = require("tensorflow", "convert", "TFLite conversion")
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8


def int8_io(info: dict) -> tuple[Quantization, Quantization]:
    """(input, output) quantization of a checked full-integer flatbuffer (``check_tflite``'s info)."""
    in_q, out_q = (Quantization(**info[k][0]["quantization"]) for k in ("inputs", "outputs"))
    return in_q, out_q


def check_tflite(flatbuffer: bytes, target: str, in_dtype: str, out_dtype: str) -> dict:
    """Compatibility check: builtin ops only, the I/O dtypes the manifest promises."""
    info = tflite_summary(flatbuffer)
    if info["flex_ops"] or info["custom_ops"]:
        raise ConversionError(
            f"{target}: the model needs non-builtin ops {info['flex_ops'] + info['custom_ops']} "
            "that stock LiteRT (Android, Raspberry Pi) cannot run",
            "Replace the layer with a builtin-friendly one (see docs/convert.md)")
    got = (info["inputs"][0]["dtype"], info["outputs"][0]["dtype"])
    if got != (in_dtype, out_dtype):
        raise ConversionError(f"{target}: converted model has I/O dtypes {got}, expected {(in_dtype, out_dtype)}",
                              "A layer could not be fully quantized; try --per-tensor or check `edgemri inspect`")
    return info


def _float_target(ctx: ConvertContext, path: Path, target: str, conv: Any, extra: dict) -> Manifest:
    flatbuffer = _run_converter(conv, target)
    info = check_tflite(flatbuffer, target, "float32", "float32")
    manifest = artifact_manifest(ctx.manifest, "tflite", target,
                                 extra={**extra, "ops": info["op_counts"]})
    write_tflite(path, flatbuffer, manifest)
    return manifest


def convert_fp32(ctx: ConvertContext, path: Path) -> Manifest:
    return _float_target(ctx, path, "tflite-fp32", _converter(ctx.saved_model), {"weights": "float32"})


def convert_fp16(ctx: ConvertContext, path: Path) -> Manifest:
    tf = require("tensorflow", "convert", "TFLite conversion")
    conv = _converter(ctx.saved_model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]
    return _float_target(ctx, path, "tflite-fp16", conv, {"weights": "float16"})


def convert_dynamic(ctx: ConvertContext, path: Path) -> Manifest:
    """Dynamic-range: int8 weights, float activations and I/O. Not an int8 model."""
    tf = require("tensorflow", "convert", "TFLite conversion")
    conv = _converter(ctx.saved_model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    _per_tensor(conv, ctx)
    return _float_target(ctx, path, "tflite-dynamic", conv,
                         {"weights": "int8 (dynamic-range: float activations)",
                          "per_channel": not ctx.options.per_tensor})


def convert_int8(ctx: ConvertContext, path: Path) -> Manifest:
    """Full integer: int8 weights, activations, input and output; from the QAT model if the run has one."""
    return _convert_int8(ctx, path, "tflite-int8", use_qat=ctx.run.has_qat())


def convert_int8_ptq(ctx: ConvertContext, path: Path) -> Manifest:
    """Full integer, post-training quantized from the FP32 model even when the run has a QAT model,
    so one run shows what QAT bought over calibration alone."""
    return _convert_int8(ctx, path, "tflite-int8-ptq", use_qat=False)


def _convert_int8(ctx: ConvertContext, path: Path, name: str, use_qat: bool) -> Manifest:
    conv = _converter(ctx.run.qat_saved_model if use_qat else ctx.saved_model)
    calib = ctx.calibration
    set_full_integer(conv, lambda: ([calib.x[i:i + 1]] for i in range(len(calib.x))))
    _per_tensor(conv, ctx)
    flatbuffer = _run_converter(conv, name)
    info = check_tflite(flatbuffer, name, "int8", "int8")
    in_q, out_q = int8_io(info)
    extra = {"weights": "int8", "source": "qat" if use_qat else "ptq", "calibration": calib.summary(),
             "per_channel": not ctx.options.per_tensor, "ops": info["op_counts"]}
    manifest = artifact_manifest(ctx.manifest, "tflite", name, input_q=in_q, output_q=out_q, extra=extra)
    write_tflite(path, flatbuffer, manifest)
    log.info("%s from %s: input %s, output %s", name, extra["source"], in_q, out_q)
    return manifest
