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

    python benchmarks/cv.py OUT --paired OTHER_OUT

compares two recipes fold by fold on the same test images (both folds must hold the same files):
each fold's model predicts its test fold again, and an exact McNemar test on the images one recipe
gets right and the other wrong says whether the pooled difference is more than chance.
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


def fold_correct(run: Path) -> tuple[list[str], np.ndarray]:
    """(test file paths, whether the fold's model gets each right), recomputed in inference mode."""
    from edgemri.rundir import RunDir
    from edgemri.train.arrays import split_arrays
    from edgemri.train.keras_model import load_keras, predict_probs

    rundir = RunDir.open(run)
    pixels, labels = split_arrays(rundir, "test")
    probs = predict_probs(load_keras(rundir.model), pixels, rundir.manifest().input)
    paths = [e["path"] for e in json.loads(rundir.split_path.read_text())["files"] if e["split"] == "test"]
    return paths, probs.argmax(axis=1) == labels


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value: of the images exactly one side gets right, a 50/50 split is chance."""
    n, k = only_a + only_b, min(only_a, only_b)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0


def paired(a: Path, b: Path) -> dict[str, Any]:
    """Fold-by-fold paired comparison of two CV outputs on their common, identical test folds."""
    right_a: list[bool] = []
    right_b: list[bool] = []
    for fold_a in sorted(a.glob("fold*")):
        fold_b = b / fold_a.name
        if fold_metrics(fold_a) is None or fold_metrics(fold_b) is None:
            continue
        (paths_a, ok_a), (paths_b, ok_b) = fold_correct(fold_a), fold_correct(fold_b)
        if paths_a != paths_b:
            raise SystemExit(f"{fold_a} and {fold_b} test different images: same --folds, seed and data needed")
        right_a += ok_a.tolist()
        right_b += ok_b.tolist()
    ra, rb = np.array(right_a), np.array(right_b)
    only_a, only_b = int((ra & ~rb).sum()), int((~ra & rb).sum())
    return {"n": len(ra), "accuracy_a": float(ra.mean()), "accuracy_b": float(rb.mean()),
            "only_a": only_a, "only_b": only_b, "p": mcnemar_p(only_a, only_b)}


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
    parser.add_argument("--paired", type=Path, help="compare OUT with this other CV output instead of running")
    parser.add_argument("--edgemri", default=str(Path(sys.executable).with_name("edgemri")))
    args, train_args = parser.parse_known_args()
    train_args = [a for a in train_args if a != "--"]
    if args.paired:
        r = paired(args.out, args.paired)
        print(f"{r['n']} test images in common folds: {args.out} {100 * r['accuracy_a']:.1f}% vs {args.paired} "
              f"{100 * r['accuracy_b']:.1f}%; right only in the first {r['only_a']}, only in the second "
              f"{r['only_b']}; exact McNemar p = {r['p']:.3g}")
        return
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
