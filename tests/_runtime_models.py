"""Tiny models in every runtime format, built once per test session (shared by runtime tests).

One Keras 3 model (conv -> relu -> global average pool -> dense softmax, 16x16x3 in, 3 classes)
converted to TFLite fp32 and full-int8, rebuilt as an ONNX graph from the same weights, and
converted from that ONNX to OpenVINO IR (fixed batch 1, so the predictor's per-image loop runs).
Every artifact gets a sidecar manifest; ``*_embedded`` copies carry the manifest only inside.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemri.runtime.manifest import InputSpec, Manifest, OutputSpec, Quantization, sidecar_path

SIZE = 16
CLASSES = ("glioma", "meningioma", "notumor")


@dataclass(frozen=True)
class TinyModels:
    root: Path
    keras: Path
    tflite_fp32: Path
    tflite_int8: Path
    onnx: Path
    openvino: Path
    tflite_embedded: Path
    onnx_embedded: Path
    openvino_embedded: Path
    manifest: Manifest  # float32 manifest of the Keras model
    int8_manifest: Manifest

    def pixels(self, n: int = 6, seed: int = 0) -> np.ndarray:
        """Prepared uint8 (n, 16, 16, 3) images with some structure (not flat noise)."""
        rng = np.random.default_rng(seed)
        base = rng.integers(0, 256, (n, SIZE, SIZE, 1), dtype=np.uint8)
        return np.repeat(base, 3, axis=-1)

    def keras_probs(self, pixels: np.ndarray) -> np.ndarray:
        import keras

        from edgemri.runtime.preprocess import normalize

        model = keras.saving.load_model(self.keras, safe_mode=True)
        return np.asarray(model(normalize(pixels, self.manifest.input)), dtype=np.float32)


def base_manifest() -> Manifest:
    return Manifest(task="brain-test", classes=CLASSES, input=InputSpec(SIZE, SIZE), arch="tiny-cnn",
                    format="keras")


@functools.cache
def build_tiny_models(root: str) -> TinyModels:
    """Build (once per process and root) every artifact under ``root``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    out = Path(root)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    prob = keras.layers.Dense(len(CLASSES), activation="softmax", name="head")(x)
    model = keras.Model(inp, prob, name="tiny")
    # Larger head weights so the classes are well separated (a fresh model is near-uniform).
    kernel, bias = model.get_layer("head").get_weights()
    model.get_layer("head").set_weights([kernel * 8.0, bias])
    keras_path = out / "model.keras"
    model.save(keras_path)
    manifest = base_manifest()

    tfl_fp32 = out / "fp32" / "model.tflite"
    tfl_fp32.parent.mkdir(exist_ok=True)
    tfl_fp32.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    manifest.replace(format="tflite").save(sidecar_path(tfl_fp32))

    rng = np.random.default_rng(1)

    def representative():
        for _ in range(16):
            pix = rng.integers(0, 256, (1, SIZE, SIZE, 1)).repeat(3, axis=-1)
            yield [(pix * manifest.input.scale + manifest.input.offset).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    tfl_int8 = out / "int8" / "model.tflite"
    tfl_int8.parent.mkdir(exist_ok=True)
    tfl_int8.write_bytes(conv.convert())
    int8_manifest = _int8_manifest(tfl_int8, manifest)
    int8_manifest.save(sidecar_path(tfl_int8))

    onnx_path, onnx_emb = _build_onnx(model, out, manifest)
    ov_path, ov_emb = _build_openvino(onnx_path, out, manifest)

    from edgemri.runtime.embed import embed_tflite

    tfl_emb = out / "embedded" / "model.tflite"
    tfl_emb.parent.mkdir(exist_ok=True)
    tfl_emb.write_bytes(embed_tflite(tfl_int8.read_bytes(), int8_manifest))
    return TinyModels(out, keras_path, tfl_fp32, tfl_int8, onnx_path, ov_path, tfl_emb, onnx_emb, ov_emb,
                      manifest, int8_manifest)


def _int8_manifest(path: Path, manifest: Manifest) -> Manifest:
    """Manifest of an int8 TFLite model, with the quantization read from the model itself."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    (iscale, izero), (oscale, ozero) = (interp.get_input_details()[0]["quantization"],
                                        interp.get_output_details()[0]["quantization"])
    import dataclasses

    return manifest.replace(
        format="tflite",
        input=dataclasses.replace(manifest.input, dtype="int8", quantization=Quantization(iscale, izero)),
        output=OutputSpec(dtype="int8", quantization=Quantization(oscale, ozero)),
    )


def _build_onnx(model, out: Path, manifest: Manifest) -> tuple[Path, Path]:
    """The same network as an ONNX graph (NHWC input, dynamic batch), built with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgemri.runtime.embed import embed_onnx_model

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
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    path = out / "onnx" / "model.onnx"
    path.parent.mkdir(exist_ok=True)
    onnx.save(proto, path)
    manifest.replace(format="onnx").save(sidecar_path(path))
    emb = out / "onnx_embedded" / "model.onnx"
    emb.parent.mkdir(exist_ok=True)
    onnx.save(embed_onnx_model(proto, manifest.replace(format="onnx")), emb)
    return path, emb


def _build_openvino(onnx_path: Path, out: Path, manifest: Manifest) -> tuple[Path, Path]:
    import openvino as ov

    from edgemri.runtime.embed import embed_openvino_model

    path = out / "openvino" / "model.xml"
    path.parent.mkdir(exist_ok=True)
    model = ov.convert_model(str(onnx_path), input=[1, SIZE, SIZE, 3])
    ov.save_model(model, str(path), compress_to_fp16=False)
    manifest.replace(format="openvino").save(sidecar_path(path))
    emb = out / "openvino_embedded" / "model.xml"
    emb.parent.mkdir(exist_ok=True)
    ov.save_model(embed_openvino_model(model, manifest.replace(format="openvino")), str(emb),
                  compress_to_fp16=False)
    return path, emb
