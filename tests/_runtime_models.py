"""The tiny test network and its committed artifacts, shared by the runtime tests and the benchmarks.

One network (conv -> relu -> global average pool -> dense softmax, 16x16x3 in, 3 classes). Its
weights and its TFLite fp32, TFLite full-int8 and ONNX fp32 artifacts are committed under
``tests/data/tiny`` (made by ``tests/data/make_tiny_models.py`` with edgemri's own writers, so each
carries its manifest embedded and as a sidecar, exactly as ``edgemri convert`` writes them). WHY
committed: the runtime install (``edgemri[litert,onnx]``) has no TensorFlow, so its tests cannot
build models. ``TinyModels`` copies them into a scratch folder and derives what a test needs
beyond them: copies without a sidecar (manifest embedded only), bare models (no manifest at all)
and the OpenVINO IR (converted from the ONNX file when ``openvino`` is installed).

Only numpy and edgemri are imported at module level: this module loads in the TensorFlow-free venv.
"""

from __future__ import annotations

import functools
import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from edgemri.runtime.manifest import InputSpec, Manifest, sidecar_path

SIZE = 16
CLASSES = ("glioma", "meningioma", "notumor")
DATA = Path(__file__).resolve().parent / "data" / "tiny"
WEIGHTS = DATA / "weights.json"
# attribute name -> committed artifact (relative to DATA); the folder names are convert's targets.
COMMITTED = {"tflite_fp32": "export/tflite-fp32/model.tflite", "tflite_int8": "export/tflite-int8/model.tflite",
             "onnx": "export/onnx/model.onnx"}


def base_manifest() -> Manifest:
    """The float32 manifest of the Keras network (what ``edgemri train`` would write)."""
    return Manifest(task="brain-test", classes=CLASSES, input=InputSpec(SIZE, SIZE), arch="tiny-cnn",
                    format="keras")


def build_keras(keras: Any, weights: dict[str, list[np.ndarray]] | None = None) -> Any:
    """The tiny network; seeded initial weights (head scaled up so classes separate) unless given."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    prob = keras.layers.Dense(len(CLASSES), activation="softmax", name="head")(x)
    model = keras.Model(inp, prob, name="tiny")
    if weights is None:  # a fresh model is near-uniform: larger head weights separate the classes
        kernel, bias = model.get_layer("head").get_weights()
        weights = {"conv": model.get_layer("conv").get_weights(), "head": [kernel * 8.0, bias]}
    for layer, values in weights.items():
        model.get_layer(layer).set_weights(values)
    return model


def load_weights(path: Path = WEIGHTS) -> dict[str, list[np.ndarray]]:
    """The committed weights (JSON: exact float32 values, diff-able, byte-stable across numpy versions)."""
    data = json.loads(path.read_text())
    return {layer: [np.asarray(v, dtype=np.float32) for v in values] for layer, values in data.items()}


def strip_tflite(data: bytes) -> bytes:
    """The bare flatbuffer of a .tflite carrying appended associated files (zip) like the manifest."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return data[: min(info.header_offset for info in zf.infolist())]
    except (zipfile.BadZipFile, ValueError):
        return data


class TinyModels:
    """The committed artifacts, copied under ``root``, plus variants derived on first use.

    ``tflite_fp32``, ``tflite_int8``, ``onnx`` (and ``openvino``) are what convert writes: manifest
    embedded and as a sidecar. ``*_embedded``: the same file without its sidecar. ``plain(which)``:
    the bare model (no manifest inside) with the sidecar beside it.
    """

    def __init__(self, root: Path):
        self.root = root
        shutil.copytree(DATA / "export", root / "export", dirs_exist_ok=True)
        for name, rel in COMMITTED.items():
            setattr(self, name, root / rel)
        self.manifest = base_manifest()  # float32 manifest of the Keras model
        self.int8_manifest = Manifest.load(sidecar_path(self.tflite_int8))
        self.tflite_embedded = self._without_sidecar(self.tflite_int8, "tflite-int8")
        self.onnx_embedded = self._without_sidecar(self.onnx, "onnx")

    def _without_sidecar(self, src: Path, folder: str) -> Path:
        dest = self.root / "embedded" / folder / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dest)
        if src.suffix == ".xml":
            shutil.copy(src.with_suffix(".bin"), dest.with_suffix(".bin"))
        return dest

    def pixels(self, n: int = 6, seed: int = 0) -> np.ndarray:
        """Prepared uint8 (n, 16, 16, 3) images with some structure (not flat noise)."""
        rng = np.random.default_rng(seed)
        base = rng.integers(0, 256, (n, SIZE, SIZE, 1), dtype=np.uint8)
        return np.repeat(base, 3, axis=-1)

    @functools.cached_property
    def keras(self) -> Any:
        """The Keras network with the committed weights (skips the test when keras is missing)."""
        import pytest

        keras = pytest.importorskip("keras", reason="comparing against the Keras model needs keras")
        return build_keras(keras, load_weights())

    def keras_probs(self, pixels: np.ndarray) -> np.ndarray:
        from edgemri.runtime.preprocess import normalize

        return np.asarray(self.keras(normalize(pixels, self.manifest.input)), dtype=np.float32)

    @functools.cached_property
    def openvino(self) -> Path:
        """OpenVINO IR from the ONNX artifact (fixed batch 1, so the predictor's per-image loop runs)."""
        import pytest

        ov = pytest.importorskip("openvino", reason="the OpenVINO IR is made with openvino")
        from edgemri.convert.artifacts import artifact_manifest, write_openvino

        manifest = artifact_manifest(base_manifest(), "openvino", "openvino", extra={"weights": "float32"},
                                     tools=("openvino",))
        path = self.root / "export" / "openvino" / "model.xml"
        return write_openvino(path, self._ov_model(ov), manifest)

    def _ov_model(self, ov: Any) -> Any:
        return ov.convert_model(str(self.plain("onnx")), input=[1, SIZE, SIZE, 3])

    @functools.cached_property
    def openvino_embedded(self) -> Path:
        return self._without_sidecar(self.openvino, "openvino")

    def plain(self, which: str) -> Path:
        """``which`` (an attribute name) with no embedded manifest; the sidecar stays beside it."""
        src: Path = getattr(self, which)
        dest = self.root / "plain" / which / src.name
        if dest.is_file():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".tflite":
            dest.write_bytes(strip_tflite(src.read_bytes()))
        elif src.suffix == ".onnx":
            import pytest

            onnx = pytest.importorskip("onnx", reason="removing the ONNX metadata needs onnx")
            proto = onnx.load(str(src))
            del proto.metadata_props[:]
            onnx.save(proto, str(dest))
        else:
            import pytest

            ov = pytest.importorskip("openvino", reason="saving OpenVINO IR needs openvino")
            ov.save_model(self._ov_model(ov), str(dest), compress_to_fp16=False)
        shutil.copy(sidecar_path(src), sidecar_path(dest))
        return dest


@functools.cache
def build_tiny_models(root: str) -> TinyModels:
    """The tiny models under ``root`` (once per process and root). Needs no TensorFlow."""
    return TinyModels(Path(root))
