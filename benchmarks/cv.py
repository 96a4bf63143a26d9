"""K-fold cross-validation of a recipe: every image tested once, pooled into one accuracy.

Why: BUSI's test split is 94 images, so one image is 1.06 points and a recipe change has to move
test accuracy by about 9 points to be told apart from the split's sampling noise. K folds of one
seed (``edgemri train --cv-fold I/K``: the test split is fold I, validation comes from the rest)
test all 626 images once; the pooled accuracy's standard error is about 1.8 points. Each fold is
trained, then evaluated on its test fold; a fold already evaluated is skipped, one with a
checkpoint is resumed (runs die with the session: run this again to continue).

    python benchmarks/cv.py OUT --recipe busi3-mobilenetv2 --data ../shared/datasets/busi/train \\
        [--folds 5] [--only 0,1,2] [-- more edgemri train flags]

Writes OUT/cv.json and prints a table: per fold n / accuracy / balanced accuracy, and the pooled
accuracy, balanced accuracy (from the summed confusion matrix) and the folds' mean +- sd.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgemri.atomic import write_json


def fold_metrics(run: Path) -> dict[str, Any] | None:
    """The fold's test metrics (evaluate/test/metrics.json), None when it was not evaluated yet."""
    path = run / "evaluate" / "test" / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def pooled(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Pooled figures over folds that test disjoint images: summed confusion matrix, accuracy and its SE."""
    matrix = np.sum([np.asarray(m["confusion_matrix"]) for m in folds], axis=0)
    n = int(matrix.sum())
    acc = float(np.trace(matrix) / n)
    recalls = np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)
    accs = [m["accuracy"] for m in folds]
    return {"n": n, "accuracy": acc, "se": math.sqrt(acc * (1 - acc) / n),
            "balanced_accuracy": float(recalls.mean()), "confusion_matrix": matrix.tolist(),
            "classes": folds[0]["classes"], "fold_mean": statistics.fmean(accs),
            "fold_sd": statistics.stdev(accs) if len(accs) > 1 else 0.0}


def run_fold(edgemri: str, out: Path, fold: int, folds: int, train_args: list[str]) -> dict[str, Any]:
    run = out / f"fold{fold}"
    if (done := fold_metrics(run)) is not None:
        return done
    if (run / "checkpoint").is_dir() and not (run / "model.keras").is_file():
        subprocess.run([edgemri, "train", "--resume", str(run)], check=True)
    elif not (run / "model.keras").is_file():
        subprocess.run([edgemri, "train", *train_args, "--cv-fold", f"{fold}/{folds}", "--out", str(run)],
                       check=True)
    subprocess.run([edgemri, "evaluate", str(run), "--split", "test"], check=True)
    metrics = fold_metrics(run)
    if metrics is None:
        raise SystemExit(f"{run}: evaluate wrote no evaluate/test/metrics.json")
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated folds to run and pool (default: all); "
                        "fewer folds still test disjoint images, so two recipes can be compared on the same ones")
    parser.add_argument("--edgemri", default=str(Path(sys.executable).with_name("edgemri")))
    args, train_args = parser.parse_known_args()
    train_args = [a for a in train_args if a != "--"]
    chosen = [int(i) for i in args.only.split(",")] if args.only else list(range(args.folds))
    results = [run_fold(args.edgemri, args.out, i, args.folds, train_args) for i in chosen]
    summary = {"folds": args.folds, "ran": chosen, "train_args": train_args, "per_fold": [
        {"fold": i, "n": m["n"], "accuracy": m["accuracy"], "balanced_accuracy": m["balanced_accuracy"]}
        for i, m in zip(chosen, results)], "pooled": pooled(results)}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "cv.json", summary)
    print("| fold | test images | accuracy % | balanced accuracy % |\n|---|---|---|---|")
    for row in summary["per_fold"]:
        print(f"| {row['fold']} | {row['n']} | {100 * row['accuracy']:.1f} | {100 * row['balanced_accuracy']:.1f} |")
    p = summary["pooled"]
    print(f"| pooled | {p['n']} | **{100 * p['accuracy']:.1f}** (SE {100 * p['se']:.1f}) | "
          f"{100 * p['balanced_accuracy']:.1f} |\n\nfolds: mean {100 * p['fold_mean']:.1f}, sd {100 * p['fold_sd']:.1f}")


if __name__ == "__main__":
    main()
