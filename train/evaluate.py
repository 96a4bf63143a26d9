"""``evaluate(run, data_root=None, split="val")``: the run's metrics on its own split or any labelled folder.

With ``data_root`` every image under it counts (class folders must be among the model's classes);
without, the run's ``split.json`` split is used. Results go to ``RUN/evaluate/<name>/`` with the
same metrics.json keys and confusion matrix as training writes.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from edgemri.atomic import write_json
from edgemri.errors import DataError
from edgemri.rundir import RunDir


def evaluate(run: RunDir | str | os.PathLike[str], data_root: str | os.PathLike[str] | None = None,
             split: str = "val", progress: bool = True) -> dict[str, Any]:
    from edgemri.metrics import classification_report
    from edgemri.plots import save_confusion_matrix
    from edgemri.train.keras_model import load_keras, predict_probs

    run = run if isinstance(run, RunDir) else RunDir.open(run)
    manifest = run.manifest()
    classes = list(manifest.classes)
    pixels, labels, source = _labelled_pixels(run, manifest, data_root, split, progress)
    if len(labels) == 0:
        raise DataError(f"no images to evaluate in {source}")
    model = load_keras(run.model)
    probs = predict_probs(model, pixels, manifest.input)
    report = {**classification_report(labels, probs, classes), "source": str(source), "split": split}
    out = run.root / "evaluate" / _slug(source if data_root else split)
    write_json(out / "metrics.json", report)
    save_confusion_matrix(np.array(report["confusion_matrix"]), classes, out / "confusion_matrix.png",
                          title=f"{manifest.arch} on {_slug(source)}: accuracy {report['accuracy']:.3f}")
    report["output_dir"] = str(out)
    return report


def _labelled_pixels(run: RunDir, manifest: Any, data_root: Any, split: str,
                     progress: bool) -> tuple[np.ndarray, np.ndarray, str]:
    if data_root is None:
        from edgemri.train.arrays import split_arrays

        pixels, labels = split_arrays(run, split, progress=progress)
        return pixels, labels, split
    from edgemri.data.discover import discover
    from edgemri.data.loader import load_samples

    index = discover(data_root)
    unknown = sorted(set(index.classes) - set(manifest.classes))
    if unknown:
        raise DataError(f"{index.root} has class folder(s) {unknown} the model does not know",
                        f"The model's classes are: {', '.join(manifest.classes)}")
    samples = [s for s in index.samples if index.layout != "split-folders" or s.split == split]
    pixels, labels = load_samples(samples, manifest.input, list(manifest.classes), progress=progress)
    return pixels, labels, str(index.root)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text).strip("/"))[-60:] or "data"
