"""Shared fixtures: the tiny committed models, tiny trained runs, bundle inputs, the Raspberry Pi tools.

Test modules never import each other: what several of them need is a fixture here (the ones that
build something are session-scoped and return a factory when a test needs its own copy).

``pytest -m runtime`` selects the tests that need only the runtime install
(``pip install ".[litert,onnx,dev]"``: numpy, pillow, ai-edge-litert, onnxruntime and the committed
models in tests/data). When every selected test is a runtime test, each one is also checked not to
import TensorFlow, Keras, OpenVINO or onnx, so the subset stays runnable without them.

Only the standard library, numpy, pillow, pytest and edgemri are imported here at module level.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image

from _runtime_models import COMMITTED, DATA, SIZE, TinyModels, build_tiny_models
from edgemri.rundir import RunDir
from edgemri.runtime.manifest import InputSpec, Manifest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
PI_DIR = ROOT / "benchmarks" / "pi"
# What a runtime test must not pull in: the runtime install has none of these.
NOT_IN_RUNTIME = ("tensorflow", "keras", "tf_keras", "openvino", "onnx", "jax", "torch")
RUNTIME_ONLY = pytest.StashKey[bool]()
PRELOADED = pytest.StashKey[frozenset]()


def _heavy_loaded() -> frozenset[str]:
    return frozenset({m.split(".")[0] for m in sys.modules} & set(NOT_IN_RUNTIME))


# -- the `-m runtime` guard ------------------------------------------------------------------------
def pytest_collection_finish(session: pytest.Session) -> None:
    """Arm the guard below when this session runs runtime tests only; note what collection loaded."""
    items = session.items
    session.config.stash[RUNTIME_ONLY] = bool(items) and all(i.get_closest_marker("runtime") for i in items)
    session.config.stash[PRELOADED] = _heavy_loaded()


@pytest.fixture(autouse=True)
def _runtime_stays_light(request: pytest.FixtureRequest) -> Iterator[None]:
    """In a runtime-only session, fail the test after which a heavy framework is newly in ``sys.modules``.

    WHY: in the development venv everything is installed, so a runtime test that imports
    TensorFlow would pass here and break only on a Pi-like install; this makes it fail here too.
    Frameworks that collection itself imported (a non-runtime module importing keras at module
    level) cannot be told apart, so they are reported in the summary instead.
    """
    yield
    config = request.config
    if config.stash.get(RUNTIME_ONLY, False):
        loaded = sorted(_heavy_loaded() - config.stash[PRELOADED])
        if loaded:
            pytest.fail(f"a `runtime` test imported {', '.join(loaded)}: runtime tests must run on "
                        'pip install ".[litert,onnx,dev]" alone (mark it otherwise, or use importorskip)')


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    preloaded = config.stash.get(PRELOADED, frozenset())
    if config.stash.get(RUNTIME_ONLY, False) and preloaded:
        terminalreporter.write_line(
            f"runtime guard: test collection already imported {', '.join(sorted(preloaded))} (a module-level "
            "import in a non-runtime test module), so runtime tests were not checked for those", yellow=True)


# -- tiny models (committed, tests/data/tiny) ------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    """TinyModels: tflite_fp32, tflite_int8, onnx (+ openvino, *_embedded, plain(...)), 16x16x3, 3 classes."""
    return build_tiny_models(str(tmp_path_factory.getbasetemp() / "runtime-models"))


@pytest.fixture(scope="session")
def make_export_run() -> Callable[[Path], Path]:
    """``make_export_run(folder)`` -> ``folder/run`` holding export/tflite-{fp32,int8} (no model.keras).

    What ``edgemri bundle`` reads: the committed tiny TFLite artifacts with their sidecars.
    """

    def make(folder: Path) -> Path:
        run = folder / "run"
        for name in ("tflite_fp32", "tflite_int8"):
            src = DATA / COMMITTED[name]
            dest = run / src.relative_to(DATA)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src.parent, dest.parent, dirs_exist_ok=True)
        return run

    return make


@pytest.fixture(scope="session")
def varied_images() -> Callable[[Path], list[Path]]:
    """``varied_images(folder)``: PNG/JPEG images of varied modes and sizes (see ``write_varied_images``)."""
    return write_varied_images


def write_varied_images(folder: Path, size: int = SIZE) -> list[Path]:
    """Gray, RGB, RGBA, non-square, smaller and larger than the model, one exactly ``size`` square."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:97, 0:61]
    blob = (120 + 100 * np.sin(yy / 9.0) * np.cos(xx / 7.0)).clip(0, 255).astype(np.uint8)
    specs = [
        ("gray-large-tall.png", blob),
        ("gray-small.png", rng.integers(0, 256, (13, 19), dtype=np.uint8)),
        ("rgb-wide.png", rng.integers(0, 256, (40, 75, 3), dtype=np.uint8)),
        ("rgb-exact.png", rng.integers(0, 256, (size, size, 3), dtype=np.uint8)),
        ("rgba-odd.png", rng.integers(0, 256, (45, 33, 4), dtype=np.uint8)),
        ("photo.jpg", np.dstack([blob, blob[::-1], blob[:, ::-1]])),
    ]
    paths = []
    for name, arr in specs:
        Image.fromarray(arr).save(folder / name)
        paths.append(folder / name)
    return paths


# -- tiny trained runs (Keras; conversion and QAT tests) -------------------------------------------
RUN_SIZE = 32


def make_trained_run(root: Path, arch: str = "simple-cnn", arch_options: dict | None = None, per_class: int = 12,
                     epochs: int = 12, task: str = "brain4", seed: int = 0) -> RunDir:
    """Synthesize images, split them, train ``arch`` briefly and write a complete run directory.

    A run is what ``edgemri train`` leaves: model.keras, manifest.json, split.json, config.json.
    Built directly (a few epochs on synthetic 32 px phantoms) so the conversion tests do not depend
    on the trainer's speed; the model comes from the real registry (``edgemri.train.models.build``).
    """
    import keras

    from edgemri.data.discover import discover
    from edgemri.data.split import make_split
    from edgemri.data.synth import synthesize
    from edgemri.train.arrays import normalize_batch, split_arrays
    from edgemri.train.models import build

    data = synthesize(root / "data", task=task, per_class=per_class, size=48, seed=seed)
    index = discover(data)
    run = RunDir.create(root / "run")
    make_split(index, val_fraction=0.3, seed=seed).save(run.split_path)
    spec = InputSpec(height=RUN_SIZE, width=RUN_SIZE)
    Manifest(task=task, classes=tuple(index.classes), input=spec, arch=arch).save(run.manifest_path)
    options = dict(arch_options or {})
    config = {"arch": arch, "arch_options": options, "image_size": RUN_SIZE, "color": "gray3", "epochs": epochs,
              "batch_size": 16, "lr": 3e-3, "seed": seed, "data": str(data), "classes": list(index.classes)}
    run.config_path.write_text(json.dumps(config))
    keras.utils.set_random_seed(seed)
    model = build(arch, (RUN_SIZE, RUN_SIZE, 3), len(index.classes), **options)
    pixels, labels = split_arrays(run, "train", progress=False)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(normalize_batch(pixels, spec), labels, epochs=epochs, batch_size=8, verbose=0)
    model.save(run.model)
    return run


@pytest.fixture(scope="session")
def make_run() -> Callable[..., RunDir]:
    """``make_run(root, arch=..., arch_options=..., per_class=..., epochs=..., task=..., seed=...)``."""
    pytest.importorskip("keras", reason="training a tiny run needs keras (edgemri[train])")
    return make_trained_run


# -- Raspberry Pi tools (benchmarks/pi scripts, loaded as modules) ---------------------------------
@functools.cache
def load_pi_module(name: str) -> ModuleType:
    """``benchmarks/pi/<name>.py`` as module ``name`` (once per process: one module object for all)."""
    spec = importlib.util.spec_from_file_location(name, PI_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def pi_module() -> Callable[[str], ModuleType]:
    """``pi_module("run_check")``: a benchmarks/pi script as a module."""
    return load_pi_module


@pytest.fixture(scope="session")
def resolve_wheels() -> ModuleType:
    return load_pi_module("resolve_wheels")


@pytest.fixture(scope="session")
def run_check() -> ModuleType:
    return load_pi_module("run_check")
