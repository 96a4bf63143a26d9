"""``edgemri inspect MODEL``: what is inside an artifact, and what will not run where.

TFLite files are read with the flatbuffer schema module that ships inside the tensorflow wheel
(``tensorflow/lite/python/schema_py_generated.py``), loaded by file path so only the small
``flatbuffers`` package is imported, not TensorFlow itself; their TFLite Model Metadata with the
metadata schema (``tflite_metadata_schema``), and ``mediapipe`` lists what MediaPipe Tasks would refuse. ONNX uses ``onnx``; OpenVINO IR uses
``openvino``. ``inspect_model`` dispatches on the file's format (``edgemri.runtime.formats``). Flags: Flex/custom ops (stock LiteRT on Android or a Pi cannot run them) and
per-channel quantized weights (NNAPI and many NPUs want per-tensor: convert with --per-tensor).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

from edgemri.errors import ModelFileError
from edgemri.extras import require
from edgemri.runtime.formats import artifact_size, format_for_path

_TFL_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16",
               9: "int8", 10: "float64"}


@functools.lru_cache(maxsize=1)
def tflite_schema() -> ModuleType:
    """tensorflow's TFLite flatbuffer schema module (object API: read, edit and re-pack a model)."""
    require("flatbuffers", "convert", "reading TFLite files")
    spec = importlib.util.find_spec("tensorflow")
    for base in (spec.submodule_search_locations or []) if spec else []:
        path = Path(base) / "lite" / "python" / "schema_py_generated.py"
        if path.is_file():
            mod_spec = importlib.util.spec_from_file_location("_edgemri_tflite_schema", path)
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)  # type: ignore[union-attr]
            return module
    raise ModelFileError("cannot read TFLite files: tensorflow's TFLite schema module was not found",
                         'Run: pip install "edgemri[convert]"')


def _tensor_info(t: Any) -> dict[str, Any]:
    q = t.quantization
    scales = [] if q is None or q.scale is None else [float(s) for s in q.scale]
    zps = [] if q is None or q.zeroPoint is None else [int(z) for z in q.zeroPoint]
    shape = [int(d) for d in (t.shapeSignature if t.shapeSignature is not None else t.shape)]
    info = {"name": t.name.decode() if isinstance(t.name, bytes) else str(t.name), "shape": shape,
            "dtype": _TFL_DTYPES.get(int(t.type), f"type{t.type}"), "quantization": None}
    if len(scales) == 1:
        info["quantization"] = {"scale": scales[0], "zero_point": zps[0] if zps else 0}
    elif len(scales) > 1:
        info["quantization"] = {"per_channel": len(scales)}
    return info


def tflite_summary(flatbuffer: bytes) -> dict[str, Any]:
    """Op counts, I/O tensors, Flex/custom ops and per-channel weights of a TFLite flatbuffer."""
    schema = tflite_schema()
    if len(flatbuffer) < 8 or flatbuffer[4:8] != b"TFL3":
        raise ModelFileError("not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    except Exception as exc:
        raise ModelFileError(f"TFLite flatbuffer is truncated or corrupt ({type(exc).__name__})") from exc
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = []
    for oc in model.operatorCodes or []:
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        custom = oc.customCode.decode() if isinstance(oc.customCode, bytes) else oc.customCode
        codes.append(custom if names.get(code) == "CUSTOM" and custom else names.get(code, f"op{code}"))
    ops: Counter[str] = Counter()
    per_channel: set[str] = set()
    for sg in model.subgraphs:
        for op in sg.operators or []:
            name = codes[op.opcodeIndex]
            ops[name] += 1
            for i in op.inputs if op.inputs is not None else []:
                if i >= 0 and (_tensor_info(sg.tensors[i])["quantization"] or {}).get("per_channel"):
                    per_channel.add(name)
    sg = model.subgraphs[0]
    custom = [c for c in codes if c not in names.values()]
    return {
        "format": "tflite",
        "op_counts": dict(sorted(ops.items())),
        "inputs": [_tensor_info(sg.tensors[i]) for i in sg.inputs],
        "outputs": [_tensor_info(sg.tensors[i]) for i in sg.outputs],
        "flex_ops": sorted(c for c in custom if c.startswith("Flex")),
        "custom_ops": sorted(c for c in custom if not c.startswith("Flex")),
        "per_channel_ops": sorted(per_channel),
    }


def onnx_summary(path: Path) -> dict[str, Any]:
    onnx = require("onnx", "convert", "inspecting ONNX files")
    try:
        model = onnx.load(os.fspath(path))
    except Exception as exc:
        raise ModelFileError(f"cannot read ONNX model {path}: {type(exc).__name__}",
                             "The file looks truncated or corrupt; export it again") from exc
    init = {t.name: t for t in model.graph.initializer}

    def io(v: Any) -> dict[str, Any]:
        tt = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
        return {"name": v.name, "shape": dims, "dtype": onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name}

    ops = Counter(n.op_type for n in model.graph.node)
    per_channel = sorted({n.name for n in model.graph.node if n.op_type == "DequantizeLinear"
                          and n.input[1] in init and len(init[n.input[1]].dims) > 0
                          and init[n.input[1]].dims[0] > 1})
    return {
        "format": "onnx",
        "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "op_counts": dict(sorted(ops.items())),
        "inputs": [io(v) for v in model.graph.input if v.name not in init],
        "outputs": [io(v) for v in model.graph.output],
        "qdq_nodes": ops.get("QuantizeLinear", 0) + ops.get("DequantizeLinear", 0),
        "per_channel_ops": ["DequantizeLinear"] * bool(per_channel),
        "metadata_keys": [p.key for p in model.metadata_props],
    }


def openvino_summary(path: Path) -> dict[str, Any]:
    ov = require("openvino", "openvino", "inspecting OpenVINO IR")
    if not path.with_suffix(".bin").is_file():
        raise ModelFileError(f"{path.with_suffix('.bin')} not found beside {path}",
                             "Copy the .bin weights next to the .xml")
    try:
        model = ov.Core().read_model(os.fspath(path))
    except Exception as exc:
        raise ModelFileError(f"cannot read OpenVINO IR {path}: {str(exc).splitlines()[0][:200]}",
                             "The file looks truncated or corrupt; export it again") from exc

    def io(p: Any) -> dict[str, Any]:
        shape = [d.get_length() if d.is_static else -1 for d in p.get_partial_shape()]
        return {"name": p.get_any_name(), "shape": shape, "dtype": p.get_element_type().get_type_name()}

    ops = Counter(op.get_type_name() for op in model.get_ops())
    for skip in ("Constant", "Parameter", "Result"):
        ops.pop(skip, None)
    return {"format": "openvino", "op_counts": dict(sorted(ops.items())),
            "inputs": [io(p) for p in model.inputs], "outputs": [io(p) for p in model.outputs],
            "fake_quantize": ops.get("FakeQuantize", 0), "per_channel_ops": []}


def tflite_file_summary(path: Path) -> dict[str, Any]:
    """``tflite_summary`` of a .tflite file (the tflite format's ``inspect``), plus the TFLite Model
    Metadata it carries (None when it has none) and what MediaPipe Tasks would refuse."""
    data = Path(path).read_bytes()
    info = tflite_summary(data)
    info["metadata"] = tflite_metadata(data)
    info["mediapipe"] = mediapipe_problems(info)
    return info


def _text(value: Any) -> str | None:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _metadata_bytes(data: bytes) -> bytes | None:
    """The ``TFLITE_METADATA`` buffer of a flatbuffer, read without unpacking the weights."""
    model = tflite_schema().Model.GetRootAsModel(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if _text(entry.Name()) == "TFLITE_METADATA":
            return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    return None


def _tensor_metadata(md: ModuleType, t: Any) -> dict[str, Any]:
    props = t.content.contentProperties if t.content is not None else None
    colors = {v: k for k, v in vars(md.ColorSpaceType).items() if not k.startswith("_")}
    units = [u.options for u in t.processUnits or []
             if u.optionsType == md.ProcessUnitOptions.NormalizationOptions]
    return {"name": _text(t.name),
            "image": colors.get(props.colorSpace) if isinstance(props, md.ImagePropertiesT) else None,
            "normalization": {"mean": [float(v) for v in units[0].mean], "std": [float(v) for v in units[0].std]}
            if units else None,
            "labels": [_text(f.name) for f in t.associatedFiles or []
                       if f.type == md.AssociatedFileType.TENSOR_AXIS_LABELS]}


def tflite_metadata(data: bytes) -> dict[str, Any] | None:
    """The TFLite Model Metadata of a .tflite's bytes (what MediaPipe and TFLite Support read), or None.

    ``missing_files`` lists associated files the metadata names but the appended zip lacks.
    """
    from edgemri.convert import tflite_metadata_schema as md
    from edgemri.runtime.embed import split_tflite

    raw = _metadata_bytes(data)
    if raw is None:
        return None
    try:
        meta = md.ModelMetadataT.InitFromPackedBuf(bytearray(raw), 0)
    except Exception as exc:
        raise ModelFileError(f"the TFLite metadata is corrupt ({type(exc).__name__})",
                             "Re-convert the model with `edgemri convert`") from exc
    sub = (meta.subgraphMetadata or [None])[0]
    inputs = [_tensor_metadata(md, t) for t in (sub.inputTensorMetadata or [])] if sub else []
    outputs = [_tensor_metadata(md, t) for t in (sub.outputTensorMetadata or [])] if sub else []
    named = [_text(f.name) for f in meta.associatedFiles or []]
    named += [n for t in inputs + outputs for n in t["labels"]]
    files = sorted(split_tflite(data)[1])
    return {"name": _text(meta.name), "version": _text(meta.version), "author": _text(meta.author),
            "license": _text(meta.license), "min_parser_version": _text(meta.minParserVersion),
            "inputs": inputs, "outputs": outputs, "associated_files": files,
            "missing_files": [n for n in named if n not in files]}


def mediapipe_problems(info: dict[str, Any]) -> list[str]:
    """Why MediaPipe Tasks' ImageClassifier would refuse (or mislabel) this model; empty: it loads."""
    meta = info.get("metadata")
    inp, out = info["inputs"][0], info["outputs"][0]
    problems = []
    if inp["dtype"] not in ("uint8", "float32"):
        problems.append(f"input is {inp['dtype']}: MediaPipe takes uint8 or float32; convert with --io uint8")
    if out["dtype"] not in ("uint8", "float32"):
        problems.append(f"output is {out['dtype']}: MediaPipe reads uint8 or float32 scores; convert with --io uint8")
    if meta is None:
        return [*problems, ("no TFLite Model Metadata (made by an older edgemri or another tool): MediaPipe needs "
                "input normalization and labels from it; re-convert with `edgemri convert` (edgemri predict "
                "still works from the sidecar or embedded manifest)")]
    tensor_in = (meta["inputs"] or [{}])[0]
    if not tensor_in.get("image"):
        problems.append("the input metadata has no ImageProperties (colour space)")
    if inp["dtype"] == "float32" and not tensor_in.get("normalization"):
        problems.append("float32 input without NormalizationOptions metadata")
    if not any(t["labels"] for t in meta["outputs"]):
        problems.append("no TENSOR_AXIS_LABELS file: MediaPipe would report class indices, not names")
    problems += [f"associated file {n} is named in the metadata but not in the file" for n in meta["missing_files"]]
    return problems


def inspect_model(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One dict per model file, whatever its format (the format's ``inspect``); ``flags`` lists
    deployment problems."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} not found")
    fmt = format_for_path(path, having="inspect")
    info = fmt.inspect(path)  # type: ignore[misc]  # having="inspect" guarantees one
    info["path"] = str(path)
    info["size_bytes"] = artifact_size(path)
    info["flags"] = _flags(info)
    return info


def _flags(info: dict[str, Any]) -> list[str]:
    flags = []
    if info.get("flex_ops"):
        flags.append(f"Flex ops {info['flex_ops']}: will not run on stock LiteRT (Android, Raspberry Pi)")
    if info.get("custom_ops"):
        flags.append(f"custom ops {info['custom_ops']}: need a custom op resolver")
    if info.get("per_channel_ops"):
        flags.append(f"per-channel quantized {info['per_channel_ops']}: NNAPI and many NPUs want "
                     "per-tensor; convert with --per-tensor")
    return flags
