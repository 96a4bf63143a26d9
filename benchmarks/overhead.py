"""The runtime's end-to-end overhead per image, warm: the table behind issue 14's second aim.

For each artifact: ``Predictor.load`` (its manifest's runtime hints apply), ``--warmup`` calls on
the first image, then ``predict_one(path)`` on each of ``--images`` JPEGs; the medians of each
stage's ``timings_ms`` (decode, preprocess, postprocess incl. temperature and the OOD guard,
inference) and overhead = (decode + preprocess + postprocess) / inference. Brain models read
glioma images of ../shared/datasets/brain-tumor-mri/train, BUSI models benign BUSI images.
Pause other jobs first: sub-millisecond stages move with any load.

    python benchmarks/overhead.py ARTIFACT... [--images 40] [--warmup 5]
    python benchmarks/overhead.py benchmarks/results/models/*/export/tflite-int8/model.tflite
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from edgemri.runtime.predictor import Predictor

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
STAGES = ("decode", "preprocess", "postprocess", "inference")


def images_for(artifact: Path, count: int) -> list[Path]:
    """The in-distribution images of the artifact's dataset (named by its run directory)."""
    folder = DATA / ("busi/train/benign" if "busi" in str(artifact) else "brain-tumor-mri/train/glioma")
    files = sorted(folder.glob("*.jpg")) + sorted(folder.glob("*.png"))
    files = [f for f in files if "_mask" not in f.name][:count]
    if not files:
        raise SystemExit(f"no images in {folder}: ../shared/datasets is needed (see its README)")
    return files


def measure(artifact: Path, count: int, warmup: int) -> dict[str, float]:
    """Median milliseconds per stage over ``count`` images, after ``warmup`` calls."""
    predictor = Predictor.load(artifact)
    files = images_for(artifact, count)
    for _ in range(warmup):
        predictor.predict_one(files[0])
    runs = [predictor.predict_one(f).timings for f in files]
    return {s: statistics.median(r[s] for r in runs) for s in STAGES}


def row(artifact: Path, t: dict[str, float]) -> str:
    """One Markdown row: run, artifact, the four stages, overhead / inference."""
    run, name = artifact.parents[2].name, artifact.parent.name
    overhead = (t["decode"] + t["preprocess"] + t["postprocess"]) / t["inference"]
    return f"| {run} | {name} | " + " | ".join(f"{t[s]:.2f}" for s in STAGES) + f" | {overhead:.0%} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("artifacts", nargs="+", type=Path)
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    print("| run | artifact | decode | preprocess | postprocess (+guard) | inference | overhead / inference |")
    print("|---|---|---|---|---|---|---|")
    for artifact in args.artifacts:
        print(row(artifact, measure(artifact, args.images, args.warmup)), flush=True)


if __name__ == "__main__":
    main()
