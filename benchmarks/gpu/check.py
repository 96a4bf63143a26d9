"""GPU training check: img/s and accuracy of MobileNetV2 (alpha 1.0) and ConvMixer-edge at 224 px.

    KERAS_BACKEND=jax python benchmarks/gpu/check.py            # on the GPU machine (no network, no TF)
    python benchmarks/gpu/check.py --allow-cpu --steps 2 --warmup 1 --batch 4 --images 24 --val-images 12
                                                                   # dry run on a CPU

For each architecture: build it, compile the trainer's loss/optimizer, run ``--warmup`` steps (XLA
compilation), then ``--steps`` timed steps through the real input pipeline (edgemri.train.dataset:
augmentation on loader threads), then ``--steps`` timed steps on one resident batch (the device alone),
re-estimate BatchNorm statistics (PreciseBN, as the trainer does) and measure inference-mode accuracy
on held-out images. Prints one line per architecture and a Markdown table; ``--json`` writes them.
TensorFlow is blocked (import fails), so a missing-TF machine and this check agree. A time budget
(``--budget``, 480 s) is checked between phases: the check stops early rather than run over.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class _NoTensorFlow:
    """Make ``import tensorflow`` fail: the GPU box has none, and nothing here may need it."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] in ("tensorflow", "tf_keras"):
            raise ImportError("TensorFlow is blocked by benchmarks/gpu/check.py")


sys.meta_path.insert(0, _NoTensorFlow())

import numpy as np

ARCHS = {"mobilenetv2": {"alpha": 1.0}, "convmixer-edge": {}}
_REPO = Path(__file__).resolve().parents[2]
#: ../shared beside the checkout, else shared/ inside it (where a device machine's copy keeps it)
DEFAULT_DATA = next((p for p in (_REPO.parent / "shared", _REPO / "shared") if p.is_dir()), _REPO.parent / "shared") \
    / "datasets" / "brain-tumor-mri" / "train"


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--arch", action="append", choices=sorted(ARCHS), help="repeatable (default: both)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=128, help="images per step (on the first GPU)")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per phase")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (compilation)")
    parser.add_argument("--images", type=int, default=4096, help="training images decoded into memory")
    parser.add_argument("--val-images", type=int, default=512)
    parser.add_argument("--precision", default="mixed_bfloat16",
                        choices=("float32", "mixed_bfloat16", "mixed_float16"))
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for the whole check")
    parser.add_argument("--allow-cpu", action="store_true", help="run without a GPU (a dry run)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args()


def _load(args: argparse.Namespace) -> tuple[Any, ...]:
    """Stratified train/val images from the dataset, decoded once at the check's size."""
    from edgemri.data.discover import discover
    from edgemri.data.loader import load_samples
    from edgemri.data.split import make_split
    from edgemri.runtime.manifest import InputSpec

    index = discover(args.data)
    split = make_split(index, val_fraction=0.15, test_fraction=0.0, seed=0)
    rng = np.random.default_rng(0)
    spec = InputSpec(height=args.size, width=args.size, channels=3, color="gray3")

    def take(name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        samples = split.samples(name)
        chosen = [samples[i] for i in sorted(rng.permutation(len(samples))[:n])]
        return load_samples(chosen, spec, split.classes, skip_bad=True, progress=False)

    return spec, list(split.classes), take("train", args.images), take("val", args.val_images)


def _steps_through_pipeline(model: Any, dataset: Any, steps: int) -> float:
    """Seconds for ``steps`` training steps fed by the dataset (whole epochs, then a partial one)."""
    done, epoch, start = 0, 0, time.perf_counter()
    while done < steps:
        dataset.set_epoch(epoch)
        n = min(steps - done, len(dataset))
        model.fit(dataset, epochs=1, steps_per_epoch=n, verbose=0, shuffle=False)
        done, epoch = done + n, epoch + 1
    return time.perf_counter() - start


def _steps_resident(model: Any, x: Any, y: np.ndarray, steps: int) -> float:
    """Seconds for ``steps`` steps on one batch already in memory: what the device alone sustains."""
    model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        logs = model.train_on_batch(x, y)
    float(np.asarray(logs[0]))  # wait for the device
    return time.perf_counter() - start


def check(arch: str, args: argparse.Namespace, data: tuple[Any, ...], deadline: float) -> dict[str, Any]:
    import keras

    from edgemri.train.arrays import normalize_batch
    from edgemri.train.augment import preset
    from edgemri.train.dataset import make_train_dataset
    from edgemri.train.keras_model import predict_probs
    from edgemri.train.models import build, default_options
    from edgemri.train.precise_bn import recalibrate_bn

    spec, classes, (px, y), (vx, vy) = data
    keras.mixed_precision.set_global_policy(args.precision)
    keras.utils.set_random_seed(0)
    options = {**default_options(arch), **ARCHS[arch]}
    model = build(arch, (args.size, args.size, 3), len(classes), keras=keras, **options)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=args.lr, weight_decay=1e-4),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    dataset = make_train_dataset(px, y, spec, args.batch, preset("mri"), 0, None, workers=0)
    result: dict[str, Any] = {"arch": arch, "size": args.size, "batch": args.batch, "precision": args.precision,
                              "params": int(model.count_params())}
    start = time.perf_counter()
    _steps_through_pipeline(model, dataset, args.warmup)
    result["compile_and_warmup_s"] = round(time.perf_counter() - start, 1)
    if time.perf_counter() < deadline:
        seconds = _steps_through_pipeline(model, dataset, args.steps)
        result["train_img_s"] = round(args.steps * args.batch / seconds, 1)
    if time.perf_counter() < deadline:
        xb = normalize_batch(px[:args.batch], spec)
        seconds = _steps_resident(model, xb, y[:args.batch], args.steps)
        result["device_img_s"] = round(args.steps * args.batch / seconds, 1)
    keras.mixed_precision.set_global_policy(args.precision)
    recalibrate_bn(model, px, spec, args.batch, 20, seed=0)
    probs = predict_probs(model, vx, spec, batch_size=max(64, args.batch))
    result["val_accuracy"] = round(float((probs.argmax(1) == vy).mean()), 4)
    result["val_images"] = len(vy)
    result["trained_images"] = (args.warmup + 2 * args.steps) * args.batch
    return result


def main() -> int:
    args = _args()
    t0 = time.perf_counter()
    deadline = t0 + args.budget
    import jax

    devices = jax.devices()
    print(f"jax {jax.__version__}: {len(devices)} x {devices[0].device_kind} ({jax.default_backend()}); "
          f"host {platform.processor() or platform.machine()}, {os.cpu_count()} cores", flush=True)
    if jax.default_backend() != "gpu" and not args.allow_cpu:
        print("no GPU visible to JAX (pass --allow-cpu for a dry run)", file=sys.stderr)
        return 2
    if not args.data.is_dir():
        print(f"dataset {args.data} not found (pass --data)", file=sys.stderr)
        return 2
    data = _load(args)
    print(f"loaded {len(data[2][1])} train + {len(data[3][1])} val images at {args.size} px "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    results = []
    for arch in args.arch or list(ARCHS):
        if time.perf_counter() > deadline:
            print(f"{arch}: skipped, the {args.budget:.0f} s budget is spent", flush=True)
            continue
        results.append(check(arch, args, data, deadline))
        print(json.dumps(results[-1]), flush=True)
    print("\n| model | train img/s (pipeline) | device img/s | compile+warm-up s | val acc |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['arch']} | {r.get('train_img_s', '-')} | {r.get('device_img_s', '-')} | "
              f"{r['compile_and_warmup_s']} | {r['val_accuracy']} |")
    print(f"total {time.perf_counter() - t0:.0f} s; tensorflow imported: {'tensorflow' in sys.modules}")
    if args.json:
        args.json.write_text(json.dumps({"device": str(devices[0].device_kind), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
