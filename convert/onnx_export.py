"""ONNX targets: ``onnx`` (tf2onnx, FP32) and ``onnx-int8`` (onnxruntime static QDQ quantization).

tf2onnx converts a ``tf.function`` wrapping the SavedModel's serving signature, with an explicit
input signature (dynamic batch, fixed H/W/C), so the graph has one input ``input`` and one output
``probabilities``. ``--nchw`` asks tf2onnx to transpose the input (``inputs_as_nchw``) and the
manifest records layout NCHW so every runtime feeds it channel-first.

ONNX conventions (``apply_conventions``): the dynamic batch dimension is named ``batch`` (tf2onnx
leaves ``unk__NNN``), and the standard model fields are set beside ``metadata_props["edgemri.manifest"]``:
``producer_name``/``producer_version`` (edgemri), ``doc_string``, ``model_version``, ``domain``, and
``metadata_props`` ``labels`` (JSON list of class names in output order), which onnxruntime's
``InferenceSession.get_modelmeta()`` shows as producer, description, version and custom metadata.

Exact GELU lowers to TF ``Erfc``, which tf2onnx (1.17) cannot convert; a custom op handler
rewrites it as ``1 - Erf(x)`` (ONNX has ``Erf`` since opset 9).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgemri.convert.artifacts import artifact_manifest, write_onnx
from edgemri.convert.context import ConvertContext, exc_summary
from edgemri.convert.source import INPUT_NAME, OUTPUT_NAME
from edgemri.errors import ConversionError
from edgemri.extras import require
from edgemri.runtime.manifest import Manifest

ONNX_TOOLS = ("tf2onnx", "onnx", "onnxruntime")
BATCH_DIM = "batch"
DOMAIN = "ai.edgemri"


def _erfc_handler(ctx: Any, node: Any, name: str, args: Any) -> Any:
    """tf2onnx custom handler: Erfc(x) -> Sub(1, Erf(x))."""
    from tf2onnx import utils

    erf = ctx.make_node("Erf", [node.input[0]], op_name_scope=node.name)
    one = ctx.make_const(utils.make_name("one"), np.array(1, dtype=np.float32))
    node.type = "Sub"
    ctx.replace_inputs(node, [one.output[0], erf.output[0]])
    return node


def export_fp32_onnx(ctx: ConvertContext) -> Any:
    """The FP32 ModelProto from the SavedModel; read it as ``ctx.onnx_fp32``, which converts once."""
    tf = require("tensorflow", "convert", "ONNX conversion")
    tf2onnx = require("tf2onnx", "convert", "ONNX conversion")
    spec = ctx.manifest.input
    sig = [tf.TensorSpec([None, spec.height, spec.width, spec.channels], tf.float32, name=INPUT_NAME)]
    loaded = tf.saved_model.load(str(ctx.saved_model))  # must outlive the trace: it owns the variables
    serving = loaded.signatures["serving_default"]

    @tf.function(input_signature=sig, autograph=False)
    def forward(x: Any) -> dict[str, Any]:
        return {OUTPUT_NAME: next(iter(serving(**{INPUT_NAME: x}).values()))}

    try:
        model, _ = tf2onnx.convert.from_function(
            forward, input_signature=sig, opset=ctx.options.opset,
            custom_op_handlers={"Erfc": (_erfc_handler, [])},
            inputs_as_nchw=[INPUT_NAME] if ctx.options.nchw else None)
    except Exception as exc:
        raise ConversionError(f"onnx: tf2onnx failed: {exc_summary(exc)}",
                              f"Try another --opset (now {ctx.options.opset})") from exc
    del loaded
    _check_onnx(model, "onnx")
    return model


def _check_onnx(model: Any, target: str) -> None:
    onnx = require("onnx", "convert", "ONNX conversion")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ConversionError(f"{target}: the converted ONNX model is invalid: {exc_summary(exc)}",
                              "Report it with `edgemri inspect` output") from exc


def name_batch_dim(model: Any, name: str = BATCH_DIM) -> Any:
    """Name the leading dynamic axis of the graph's inputs and outputs ``name`` (tf2onnx writes a
    different ``unk__NNN`` for each), and every other occurrence of those names (value_info)."""
    ends = [*model.graph.input, *model.graph.output]
    leading = [v.type.tensor_type.shape.dim[0] for v in ends if v.type.tensor_type.shape.dim]
    old = {d.dim_param for d in leading if not d.HasField("dim_value") and d.dim_param}
    for dim in leading:
        if not dim.HasField("dim_value"):
            dim.dim_param = name
    for value in (*ends, *model.graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in old:
                dim.dim_param = name
    return model


def apply_conventions(model: Any, manifest: Manifest) -> Any:
    """Named batch dimension and the standard ModelProto metadata fields (in place; returned)."""
    import json

    from edgemri import __version__

    name_batch_dim(model)
    target = manifest.provenance.get("target", "onnx")
    model.producer_name, model.producer_version, model.domain = "edgemri", __version__, DOMAIN
    model.model_version = 1
    model.doc_string = (f"edgemri {manifest.task} {manifest.arch or 'model'} ({target}): image classifier over "
                        f"{', '.join(manifest.classes)}. Input {manifest.input.layout} float32 "
                        f"{list(manifest.input.shape[1:])}, pixels p -> p * {manifest.input.scale:.8g} + "
                        f"{manifest.input.offset:.8g}; output {manifest.output.kind}. Preprocessing and provenance: "
                        "metadata_props['edgemri.manifest']. Not a medical device.")
    for prop in list(model.metadata_props):
        if prop.key == "labels":
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key, entry.value = "labels", json.dumps(list(manifest.classes))
    return model


def convert_onnx(ctx: ConvertContext, path: Path) -> Manifest:
    model = ctx.onnx_fp32
    manifest = artifact_manifest(ctx.manifest, "onnx", "onnx", layout="NCHW" if ctx.options.nchw else "NHWC",
                                 extra={"opset": ctx.options.opset, "weights": "float32"}, tools=ONNX_TOOLS)
    clone = type(model)()
    clone.CopyFrom(model)
    write_onnx(path, apply_conventions(clone, manifest), manifest)
    return manifest


def _calibration_reader(base: type, x: np.ndarray, nchw: bool) -> Any:
    """An onnxruntime ``CalibrationDataReader`` yielding the calibration images one at a time."""
    batches = np.transpose(x, (0, 3, 1, 2)) if nchw else x

    class Reader(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self.i = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.i >= len(batches):
                return None
            self.i += 1
            return {INPUT_NAME: np.ascontiguousarray(batches[self.i - 1:self.i])}

        def rewind(self) -> None:
            self.i = 0

    return Reader()


def convert_onnx_int8(ctx: ConvertContext, path: Path) -> Manifest:
    """Static QDQ quantization (int8 weights and activations, float I/O) with a calibration reader."""
    onnx = require("onnx", "convert", "ONNX quantization")
    q = require("onnxruntime.quantization", "onnx", "ONNX quantization")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calib = ctx.calibration
    with tempfile.TemporaryDirectory(prefix="edgemri-onnx-") as tmp:
        src, pre, out = (os.path.join(tmp, n) for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        onnx.save(ctx.onnx_fp32, src)
        try:  # folds constants and infers shapes, which quantization needs for every tensor
            quant_pre_process(src, pre, skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 - optional optimisation step
            pre = src
        reader = _calibration_reader(q.CalibrationDataReader, calib.x, ctx.options.nchw)
        try:
            q.quantize_static(pre, out, reader, quant_format=q.QuantFormat.QDQ,
                              activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
                              per_channel=not ctx.options.per_tensor,
                              calibrate_method=q.CalibrationMethod.MinMax)
        except Exception as exc:
            raise ConversionError(f"onnx-int8: quantize_static failed: {exc_summary(exc)}",
                                  "Check the calibration data, or use --per-tensor") from exc
        model = onnx.load(out)
    ops = [n.op_type for n in model.graph.node]
    n_q, n_dq = ops.count("QuantizeLinear"), ops.count("DequantizeLinear")
    if not n_q or not n_dq:
        raise ConversionError("onnx-int8: no QuantizeLinear/DequantizeLinear nodes after quantization",
                              "The graph has no quantizable ops; use the onnx target instead")
    extra = {"opset": ctx.options.opset, "weights": "int8", "scheme": "QDQ (float32 I/O)",
             "qdq_nodes": {"QuantizeLinear": n_q, "DequantizeLinear": n_dq},
             "int8_io": qdq_io_params(model), "calibration": calib.summary(),
             "per_channel": not ctx.options.per_tensor}
    manifest = artifact_manifest(ctx.manifest, "onnx", "onnx-int8", layout="NCHW" if ctx.options.nchw else "NHWC",
                                 extra=extra, tools=ONNX_TOOLS)
    write_onnx(path, apply_conventions(model, manifest), manifest)
    return manifest


def qdq_io_params(model: Any) -> dict[str, Any]:
    """Scale/zero point of the first QuantizeLinear on the input and the last DequantizeLinear
    before the output (the int8 boundary of a QDQ graph), read back from the initializers."""
    from onnx import numpy_helper

    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    produced = {o: n for n in model.graph.node for o in n.output}

    def params(node: Any) -> dict[str, Any] | None:
        if node is None or node.input[1] not in init:
            return None
        zp = init.get(node.input[2]) if len(node.input) > 2 else None
        return {"scale": float(np.ravel(init[node.input[1]])[0]),
                "zero_point": int(np.ravel(zp)[0]) if zp is not None else 0}

    graph_in = model.graph.input[0].name
    first = next((n for n in model.graph.node if n.op_type == "QuantizeLinear"
                  and (n.input[0] == graph_in or produced.get(n.input[0]) is not None
                       and produced[n.input[0]].input[:1] == [graph_in])), None)
    node = produced.get(model.graph.output[0].name)
    last = None
    while node is not None and last is None:  # walk back to the nearest DequantizeLinear
        last = node if node.op_type == "DequantizeLinear" else None
        node = produced.get(node.input[0]) if last is None and node.input else None
    return {"input": params(first), "output": params(last)}
