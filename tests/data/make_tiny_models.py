"""Make the tiny committed test models in tests/data/tiny (run it again after changing them).

    python tests/data/make_tiny_models.py          # rewrites tests/data/tiny/{weights.json,export/...}

WHY committed files: the runtime (``pip install "edgemri[litert,onnx]"``, what a Raspberry Pi
gets) has no TensorFlow, so its tests (``pytest -m runtime``) cannot build models; these few KB
are made once here, on a machine with the ``convert`` extra (TensorFlow, onnx).

What it writes, from tests/_runtime_models.py's tiny network (16x16x3 in, 3 classes, seeded):

* ``weights.json``: the network's weights (the Keras comparison tests rebuild the model from it);
* ``export/tflite-fp32/model.tflite``, ``export/tflite-int8/model.tflite`` (full integer, int8 in
  and out, calibrated on seeded random images) and ``export/onnx/model.onnx`` (the same network
  written with onnx.helper, NHWC input, dynamic batch), each with its manifest embedded and as a
  sidecar ``model.*.json``, through edgemri's own writers (``edgemri.convert.artifacts``) and the
  converter's TFLite check, so they are what ``edgemri convert`` writes.

Deterministic: the same weights, graphs and manifests every run with the same tool versions
(the sidecars record them): the .tflite manifest zip has a fixed timestamp, so the bytes repeat too.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: the shared network definition

from _runtime_models import CLASSES, DATA, SIZE, WEIGHTS, base_manifest, build_keras
from edgemri.runtime.manifest import Manifest

PROVENANCE = {"made_by": "tests/data/make_tiny_models.py"}


def representative(manifest: Manifest):
    """Calibration batches: 16 seeded random gray3 images, normalized as the runtime does."""
    rng = np.random.default_rng(1)
    for _ in range(16):
        pix = rng.integers(0, 256, (1, SIZE, SIZE, 1)).repeat(3, axis=-1)
        yield [(pix * manifest.input.scale + manifest.input.offset).astype(np.float32)]


def write_weights(model: Any, path: Path = WEIGHTS) -> None:
    """One layer per line: [kernel, bias] as nested lists (float32 values survive JSON exactly)."""
    lines = [f"  {json.dumps(layer)}: {json.dumps([w.tolist() for w in model.get_layer(layer).get_weights()])}"
             for layer in ("conv", "head")]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")


def tflite_fp32(tf: Any, model: Any, base: Manifest, out: Path) -> Path:
    from edgemri.convert.artifacts import artifact_manifest, write_tflite
    from edgemri.convert.tflite import check_tflite

    flatbuffer = bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    info = check_tflite(flatbuffer, "tflite-fp32", "float32", "float32")
    manifest = artifact_manifest(base, "tflite", "tflite-fp32", extra={"weights": "float32", "ops": info["op_counts"]})
    return write_tflite(out / "export" / "tflite-fp32" / "model.tflite", flatbuffer, manifest)


def tflite_int8(tf: Any, model: Any, base: Manifest, out: Path) -> Path:
    from edgemri.convert.artifacts import artifact_manifest, write_tflite
    from edgemri.convert.tflite import check_tflite, int8_io, set_full_integer

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    set_full_integer(conv, lambda: representative(base))
    flatbuffer = bytes(conv.convert())
    info = check_tflite(flatbuffer, "tflite-int8", "int8", "int8")
    in_q, out_q = int8_io(info)
    extra = {"weights": "int8", "source": "ptq", "calibration": {"images": 16, "source": "seeded random"},
             "per_channel": True, "ops": info["op_counts"]}
    manifest = artifact_manifest(base, "tflite", "tflite-int8", input_q=in_q, output_q=out_q, extra=extra)
    return write_tflite(out / "export" / "tflite-int8" / "model.tflite", flatbuffer, manifest)


def onnx_fp32(model: Any, base: Manifest, out: Path) -> Path:
    """The same network as an ONNX graph (NHWC input, dynamic batch), built with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgemri.convert.artifacts import artifact_manifest, write_onnx

    kernel, conv_b = model.get_layer("conv").get_weights()
    dense_w, dense_b = model.get_layer("head").get_weights()
    inits = [
        numpy_helper.from_array(np.transpose(kernel, (3, 2, 0, 1)).astype(np.float32), "conv_w"),
        numpy_helper.from_array(conv_b.astype(np.float32), "conv_b"),
        numpy_helper.from_array(dense_w.astype(np.float32), "dense_w"),
        numpy_helper.from_array(dense_b.astype(np.float32), "dense_b"),
    ]
    nodes = [
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "conv_w", "conv_b"], ["conv"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "dense_w", "dense_b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", SIZE, SIZE, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", len(CLASSES)])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgemri-tests")
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    manifest = artifact_manifest(base, "onnx", "onnx", extra={"opset": 17, "weights": "float32"}, tools=("onnx",))
    return write_onnx(out / "export" / "onnx" / "model.onnx", proto, manifest)


def make(out: Path = DATA) -> list[Path]:
    """Write weights.json and the three artifacts under ``out``; return the artifact paths."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    out.mkdir(parents=True, exist_ok=True)
    model = build_keras(keras)
    write_weights(model, out / WEIGHTS.name)
    base = base_manifest().replace(provenance=PROVENANCE)
    return [tflite_fp32(tf, model, base, out), tflite_int8(tf, model, base, out), onnx_fp32(model, base, out)]


if __name__ == "__main__":
    for path in make(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA):
        print(f"{path} ({path.stat().st_size} bytes)")
