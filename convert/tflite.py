"""LiteRT (TFLite) targets: fp32, fp16 weights, dynamic-range, full-integer int8.

All four start from the SavedModel export (fixed input signature) through
``tf.lite.TFLiteConverter.from_saved_model``. ``tflite-int8`` prefers the QAT SavedModel
(``RUN/qat/saved_model``) when the run has one: its ranges were learned, not estimated.
Every flatbuffer passes the compatibility check (builtin ops only, expected I/O dtypes) before
it is written, so nothing that stock LiteRT on a Pi or Android cannot run leaves this module.

Full-integer targets take ``--io``: ``int8`` (the default: int8 tensors end to end), ``uint8`` (int8
inside, uint8 input and output: what MediaPipe Tasks and the Android ML binding accept) or
``float32`` (int8 inside, float input and output). Every file also carries the standard TFLite
Model Metadata (``with_metadata``): name, version, author, licence, input image properties and
normalization, output score semantics, ``labels.txt`` as the output's ``TENSOR_AXIS_LABELS``
associated file and the edgemri ``manifest.json`` as a model-level associated file, so MediaPipe,
the TFLite Support library, ``edgemri predict`` and the Android core all read one file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edgemri.convert.artifacts import artifact_manifest, write_tflite
from edgemri.convert.context import IO_TYPES, ConvertContext, exc_summary
from edgemri.convert.inspect import tflite_schema, tflite_summary
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


def set_full_integer(conv: Any, representative: Any, io: str = "int8") -> None:
    """Full-integer settings: activations calibrated on ``representative``, int8 kernels, ``io`` I/O
    (``int8``, ``uint8`` or ``float32``: the converter adds the boundary (de)quantize ops)."""
    tf = require("tensorflow", "convert", "TFLite conversion")
    if io not in IO_TYPES:
        raise ConversionError(f"unknown --io {io!r}", f"Choose from: {', '.join(IO_TYPES)}")
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = getattr(tf, io)


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
    write_tflite(path, with_metadata(flatbuffer, manifest), manifest)
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
    calib, io = ctx.calibration, ctx.options.io
    set_full_integer(conv, lambda: ([calib.x[i:i + 1]] for i in range(len(calib.x))), io)
    _per_tensor(conv, ctx)
    flatbuffer = _run_converter(conv, name)
    info = check_tflite(flatbuffer, name, io, io)
    in_q, out_q = int8_io(info) if io != "float32" else (None, None)
    extra = {"weights": "int8", "source": "qat" if use_qat else "ptq", "calibration": calib.summary(),
             "per_channel": not ctx.options.per_tensor, "io": io, "ops": info["op_counts"]}
    manifest = artifact_manifest(ctx.manifest, "tflite", name, input_q=in_q, output_q=out_q,
                                 int_dtype=io if io != "float32" else "int8", extra=extra)
    write_tflite(path, with_metadata(flatbuffer, manifest), manifest)
    log.info("%s from %s: %s I/O, input %s, output %s", name, extra["source"], io, in_q, out_q)
    return manifest


# -- TFLite Model Metadata -----------------------------------------------------------------------
METADATA_NAME = "TFLITE_METADATA"  # the model.metadata entry every metadata reader looks up
METADATA_IDENTIFIER = b"M001"
LABELS_FILE = "labels.txt"
MANIFEST_FILE = "manifest.json"  # the runtime's embedded-manifest member (runtime.embed.TFLITE_MEMBER)
MIN_PARSER_VERSION = "1.0.0"  # every field written here is in metadata schema 1.0.0


def _metadata_schema() -> Any:
    require("flatbuffers", "convert", "writing TFLite metadata")
    from edgemri.convert import tflite_metadata_schema

    return tflite_metadata_schema


def normalization(manifest: Manifest) -> tuple[float, float]:
    """(mean, std) of TFLite's ``(p - mean) / std`` equal to the manifest's ``p * scale + offset``."""
    spec = manifest.input
    return -spec.offset / spec.scale, 1.0 / spec.scale


def _quant_text(where: str, dtype: str, q: Quantization | None) -> str:
    if q is None:
        return f"{where} {dtype}"
    return f"{where} {dtype} (real = {q.scale:.8g} * (q - {q.zero_point}))"


def _input_metadata(md: Any, manifest: Manifest) -> Any:
    spec = manifest.input
    mean, std = normalization(manifest)
    image = md.ImagePropertiesT()
    image.colorSpace = md.ColorSpaceType.GRAYSCALE if spec.channels == 1 else md.ColorSpaceType.RGB
    content = md.ContentT()
    content.contentPropertiesType, content.contentProperties = md.ContentProperties.ImageProperties, image
    norm = md.NormalizationOptionsT()
    norm.mean, norm.std = [mean] * spec.channels, [std] * spec.channels
    unit = md.ProcessUnitT()
    unit.optionsType, unit.options = md.ProcessUnitOptions.NormalizationOptions, norm
    stats = md.StatsT()
    stats.min, stats.max = [spec.offset] * spec.channels, [255 * spec.scale + spec.offset] * spec.channels
    gray = " (trained on grayscale replicated to 3 channels: give it gray or RGB-of-gray images)" \
        if spec.color == "gray3" else ""
    tensor = md.TensorMetadataT()
    tensor.name = "image"
    tensor.description = (f"{spec.height}x{spec.width}x{spec.channels} {spec.layout} image{gray}, "
                          f"resized {spec.resize}; pixels p in [0, 255] -> p * {spec.scale:.8g} + {spec.offset:.8g}; "
                          + _quant_text("tensor", spec.dtype, spec.quantization))
    tensor.content, tensor.processUnits, tensor.stats = content, [unit], stats
    return tensor


def _output_metadata(md: Any, manifest: Manifest) -> Any:
    out = manifest.output
    content = md.ContentT()
    content.contentPropertiesType, content.contentProperties = (md.ContentProperties.FeatureProperties,
                                                                md.FeaturePropertiesT())
    labels = md.AssociatedFileT()
    labels.name, labels.type = LABELS_FILE, md.AssociatedFileType.TENSOR_AXIS_LABELS
    labels.description = "Class names, one per line, in output order."
    tensor = md.TensorMetadataT()
    tensor.name = "probabilities" if out.kind == "probabilities" else "logits"
    semantics = "softmax probabilities in [0, 1] summing to 1" if out.kind == "probabilities" else \
        "logits (apply softmax for probabilities)"
    tensor.description = (f"{manifest.num_classes} class scores: {semantics}; "
                          + _quant_text("tensor", out.dtype, out.quantization))
    tensor.content, tensor.associatedFiles = content, [labels]
    if out.kind == "probabilities":
        stats = md.StatsT()
        stats.min, stats.max = [0.0], [1.0]
        tensor.stats = stats
    return tensor


def metadata_buffer(manifest: Manifest) -> bytes:
    """The ``ModelMetadata`` flatbuffer (identifier ``M001``) describing this artifact."""
    from edgemri import __version__

    md = _metadata_schema()
    sub = md.SubGraphMetadataT()
    sub.name = "image_classifier"
    sub.inputTensorMetadata = [_input_metadata(md, manifest)]
    sub.outputTensorMetadata = [_output_metadata(md, manifest)]
    mfile = md.AssociatedFileT()
    mfile.name, mfile.type = MANIFEST_FILE, md.AssociatedFileType.DESCRIPTIONS
    mfile.description = "The edgemri manifest (JSON): preprocessing, quantization and provenance."
    meta = md.ModelMetadataT()
    target = manifest.provenance.get("target", manifest.format)
    meta.name = f"edgemri {manifest.task} {manifest.arch or 'model'} ({target})"
    meta.description = (f"Image classifier ({', '.join(manifest.classes)}) made by edgemri. "
                        "Research and engineering demonstration only: not a medical device.")
    meta.version = f"edgemri {__version__}"
    meta.author = "edgemri"
    meta.license = str(manifest.provenance.get("license", "Apache-2.0 (edgemri); check your training data's terms"))
    meta.subgraphMetadata, meta.associatedFiles, meta.minParserVersion = [sub], [mfile], MIN_PARSER_VERSION
    builder = flatbuffers_builder()
    builder.Finish(meta.Pack(builder), file_identifier=METADATA_IDENTIFIER)
    return bytes(builder.Output())


def flatbuffers_builder() -> Any:
    flatbuffers = require("flatbuffers", "convert", "writing TFLite metadata")
    return flatbuffers.Builder(1024)


def with_metadata(flatbuffer: bytes, manifest: Manifest) -> bytes:
    """``flatbuffer`` with a ``TFLITE_METADATA`` buffer (replacing an old one) and ``labels.txt``
    appended as an associated file; the writer then adds ``manifest.json`` to the same zip."""
    import numpy as np

    from edgemri.runtime.embed import embed_files

    schema = tflite_schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    data = np.frombuffer(metadata_buffer(manifest), dtype=np.uint8)
    model.buffers = list(model.buffers or [])
    model.metadata = list(model.metadata or [])
    old = next((m for m in model.metadata if _name(m.name) == METADATA_NAME), None)
    if old is not None:
        model.buffers[old.buffer].data = data
    else:
        buf = schema.BufferT()
        buf.data = data
        model.buffers.append(buf)
        entry = schema.MetadataT()
        entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
        model.metadata.append(entry)
    builder = flatbuffers_builder()
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    labels = "".join(f"{c}\n" for c in manifest.classes).encode("utf-8")
    return embed_files(bytes(builder.Output()), {LABELS_FILE: labels})


def _name(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
