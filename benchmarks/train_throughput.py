"""Training throughput per recipe: images per second of the model's training step on this CPU.

Why: issue 18 asks for img/s per architecture, and the epoch times in history.csv mix in whatever
else shared the machine. Each recipe's architecture, options, image size, batch size, optimizer and
loss are built and compiled as ``edgemri train`` builds them (``train.trainer._new_model`` and
``_compile``), then ``train_on_batch`` runs on random inputs: ``--warmup`` steps, then the median
step time of ``--steps``. The input pipeline is left out: it produces batches 20-30x faster than
these models consume them on 2 cores (``pipeline_curve.py``). Recipes that start from weights or
freeze a backbone are timed fully trainable from random init (the same compute as their
fine-tuning phase). Pause other jobs first.

    python benchmarks/train_throughput.py [RECIPE ...] [--steps 8] [--warmup 2]

Prints a Markdown table (recipe, arch, px, batch, s/step, img/s, epoch of 4,570 images) and the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from typing import Any

import numpy as np

from edgemri.bench.machine import describe_machine, machine_name
from edgemri.runtime.manifest import InputSpec
from edgemri.train import recipes
from edgemri.train.trainer import _compile, _new_model

#: brain4's training split (80% of 5,708 images), for the epoch-time column
EPOCH_IMAGES = 4570


def step_seconds(recipe: str, steps: int, warmup: int) -> tuple[Any, list[float]]:
    """(the recipe's TrainConfig, seconds of each timed training step)."""
    import keras

    # a recipe that starts from another model needs --weights: name one, build from random init anyway
    entry = recipes.load(recipe)
    needs = entry.starts_from or entry.needs_weights
    cfg = dataclasses.replace(recipes.config(recipe, data=".", out="unused", weights="unused" if needs else None),
                              weights=None)
    spec = InputSpec(cfg.image_size, cfg.image_size)
    model = _new_model(keras, cfg, spec, 4)
    _compile(keras, model, cfg, cfg.lr)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (cfg.batch_size, cfg.image_size, cfg.image_size, 3)).astype(np.float32)
    labels = rng.integers(0, 4, cfg.batch_size)
    y = np.eye(4, dtype=np.float32)[labels] if cfg.soft_labels else labels
    weights = np.ones(cfg.batch_size, np.float32)  # training always passes per-image (class) weights
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        model.train_on_batch(x, y, sample_weight=weights)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    keras.backend.clear_session()
    return cfg, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", help="recipe names (default: every packaged recipe but the demo)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    names = args.recipes or [name for name in recipes.registry().names() if name != "demo"]
    print(f"machine: {machine_name(describe_machine())}")
    print("| recipe | arch | px | batch | s/step | img/s | epoch of 4,570 images |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        cfg, times = step_seconds(name, args.steps, args.warmup)
        step = statistics.median(times)
        print(f"| {name} | {cfg.arch} | {cfg.image_size} | {cfg.batch_size} | {step:.3f} | "
              f"{cfg.batch_size / step:.0f} | {EPOCH_IMAGES / cfg.batch_size * step:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
