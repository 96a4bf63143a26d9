"""The tiny trained run the conversion and QAT tests start from (conftest ``make_run``) is complete.

A run is what ``edgemri train`` leaves: model.keras, manifest.json, split.json, config.json; the
fixture builds one directly (a few epochs on synthetic 32 px phantoms, see conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def test_make_run_writes_a_loadable_run(tmp_path: Path, make_run) -> None:
    from edgemri.convert.source import keras_probs, load_keras_model, split_arrays

    run = make_run(tmp_path, per_class=4, epochs=1)
    model = load_keras_model(run.model)
    pixels, labels = split_arrays(run, "val")
    probs = keras_probs(model, pixels, run.manifest().input)
    assert probs.shape == (len(labels), run.manifest().num_classes) and len(labels) > 0
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
