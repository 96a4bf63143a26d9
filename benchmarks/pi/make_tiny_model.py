"""Make a tiny full-int8 TFLite classifier (manifest embedded) and a few test images, on x86.

WHY: the emulated Raspberry Pi check needs a tflite-int8 model produced by the same route as a
real export (Keras -> TFLiteConverter, full int8 with a representative dataset, int8 in and out,
the converter's compatibility check and manifest, embedded in the .tflite) but small enough to run
in seconds under qemu. Only the embedded manifest, no sidecar: the Pi reads a lone file. Needs the
``train``/``convert`` extras (TensorFlow), which only the x86 side has.

Usage: python benchmarks/pi/make_tiny_model.py OUT_DIR   ->  OUT_DIR/model.tflite, OUT_DIR/images/*.png
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

SIZE = 32
CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


def build_keras(keras):
    """conv -> depthwise -> pointwise -> pool -> dense: the op types a MobileNet int8 export uses."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6", name="conv")(inp)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6", name="dw")(x)
    x = keras.layers.Conv2D(16, 1, activation="relu6", name="pw")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(len(CLASSES), activation="softmax", name="head")(x)
    model = keras.Model(inp, out, name="tiny_pi")
    kernel, bias = model.get_layer("head").get_weights()
    model.get_layer("head").set_weights([kernel * 60.0, bias])  # spread the classes apart
    return model


def phantom(seed: int) -> np.ndarray:
    """A grayscale uint8 'scan' with a bright blob: structured input, not flat noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64]
    cy, cx, r = rng.integers(16, 48), rng.integers(16, 48), rng.integers(5, 14)
    img = 60 + 40 * np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / 600.0)
    img = img + 150 * (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r)
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def make(out: Path, n_images: int = 3) -> tuple[Path, list[Path]]:
    """Write ``out/model.tflite`` (int8, manifest embedded) and ``out/images/*.png``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    from PIL import Image

    from edgemri.atomic import write_bytes
    from edgemri.convert.artifacts import artifact_manifest
    from edgemri.convert.tflite import check_tflite, int8_io, set_full_integer
    from edgemri.runtime.embed import embed_tflite
    from edgemri.runtime.manifest import InputSpec, Manifest

    out.mkdir(parents=True, exist_ok=True)
    spec = InputSpec(SIZE, SIZE)
    rng = np.random.default_rng(1)

    def representative():
        for i in range(16):
            pix = np.repeat(phantom(100 + i)[::2, ::2, None], 3, axis=-1)[None].astype(np.float32)
            yield [pix * spec.scale + spec.offset + rng.normal(0, 0.01, pix.shape).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(build_keras(keras))
    set_full_integer(conv, representative)
    flatbuffer = bytes(conv.convert())

    # The converter's own check and manifest: builtin ops only, int8 I/O, quantization read from the model.
    info = check_tflite(flatbuffer, "tflite-int8", "int8", "int8")
    in_q, out_q = int8_io(info)
    base = Manifest(task="brain-tumor-mri", classes=CLASSES, input=spec, arch="tiny-pi",
                    provenance={"made_by": "benchmarks/pi/make_tiny_model.py"})
    manifest = artifact_manifest(base, "tflite", "tflite-int8", input_q=in_q, output_q=out_q,
                                 extra={"weights": "int8", "ops": info["op_counts"]})
    model_path = out / "model.tflite"
    write_bytes(model_path, embed_tflite(flatbuffer, manifest))
    images = []
    (out / "images").mkdir(exist_ok=True)
    for i in range(n_images):
        path = out / "images" / f"scan{i}.png"
        Image.fromarray(phantom(i)).save(path)
        images.append(path)
    return model_path, images


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    model, imgs = make(Path(sys.argv[1]))
    print(model)
    for img in imgs:
        print(img)
