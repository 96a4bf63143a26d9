"""Fixtures for the pytest-benchmark suite (``pytest benchmarks --benchmark-json=...``).

The tiny models in every runtime format come from the runtime tests' builder
(``tests/_runtime_models.py``) so the benchmarks time exactly the artifacts the tests check.
They are committed files (tests/data, made by tests/data/make_tiny_models.py), so only the
runtime engines are needed; a missing engine skips its benchmarks, preprocessing always runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _tiny_builder():
    tests_dir = str(ROOT / "tests")
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    try:
        from _runtime_models import build_tiny_models
    except ImportError as exc:  # pragma: no cover - the runtime tests' helper moved
        pytest.skip(f"tests/_runtime_models.py not importable: {exc}")
    return build_tiny_models


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """TinyModels: the committed tests/data tiny models (tflite fp32/int8, onnx; openvino on demand)."""
    pytest.importorskip("ai_edge_litert", reason="ai_edge_litert runs the tiny benchmark models")
    return _tiny_builder()(str(tmp_path_factory.mktemp("tiny-models")))


@pytest.fixture(scope="session")
def mri_like_image():
    """A 224x224 grayscale MRI-like uint8 image (smooth structure + noise), deterministic."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:224, 0:224]
    head = ((yy - 112) ** 2 / 95**2 + (xx - 112) ** 2 / 80**2) < 1
    img = head * (120 + 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0)) + rng.normal(0, 8, (224, 224))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def image_files(tmp_path_factory, mri_like_image):
    """The same image as 224 px JPEG and PNG, and a 512 px PNG (a typical scanner export)."""
    from PIL import Image

    out = tmp_path_factory.mktemp("images")
    files = {"jpg224": out / "mri224.jpg", "png224": out / "mri224.png", "png512": out / "mri512.png"}
    Image.fromarray(mri_like_image).save(files["jpg224"], quality=95)
    Image.fromarray(mri_like_image).save(files["png224"])
    Image.fromarray(mri_like_image).resize((512, 512), Image.BILINEAR).save(files["png512"])
    return files
