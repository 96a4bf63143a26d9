"""Tiny trained runs for the conversion and QAT tests (helpers, plus a check of the helper itself).

A run is what ``edgemri train`` leaves: model.keras, manifest.json, split.json, config.json. We
build it directly (a few epochs on synthetic 32 px phantoms) so these tests do not depend on the
trainer's speed; the model comes from the real registry (``edgemri.train.models.build``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgemri.rundir import RunDir
from edgemri.runtime.manifest import InputSpec, Manifest

SIZE = 32


def make_run(root: Path, arch: str = "simple-cnn", arch_options: dict | None = None, per_class: int = 12,
             epochs: int = 12, task: str = "brain4", seed: int = 0) -> RunDir:
    """Synthesize images, split them, train ``arch`` briefly and write a complete run directory."""
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
    spec = InputSpec(height=SIZE, width=SIZE)
    manifest = Manifest(task=task, classes=tuple(index.classes), input=spec, arch=arch)
    manifest.save(run.manifest_path)
    options = dict(arch_options or {})
    config = {"arch": arch, "arch_options": options, "image_size": SIZE, "color": "gray3", "epochs": epochs,
              "batch_size": 16, "lr": 3e-3, "seed": seed, "data": str(data), "classes": list(index.classes)}
    run.config_path.write_text(json.dumps(config))
    keras.utils.set_random_seed(seed)
    model = build(arch, (SIZE, SIZE, 3), len(index.classes), **options)
    pixels, labels = split_arrays(run, "train", progress=False)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(normalize_batch(pixels, spec), labels, epochs=epochs, batch_size=8, verbose=0)
    model.save(run.model)
    return run


def test_make_run_writes_a_loadable_run(tmp_path: Path) -> None:
    from edgemri.convert.source import keras_probs, load_keras_model, split_arrays

    run = make_run(tmp_path, per_class=4, epochs=1)
    model = load_keras_model(run.model)
    pixels, labels = split_arrays(run, "val")
    probs = keras_probs(model, pixels, run.manifest().input)
    assert probs.shape == (len(labels), run.manifest().num_classes) and len(labels) > 0
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
