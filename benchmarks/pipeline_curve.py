"""img/s of the training input pipeline (augment + normalize) against loader threads.

    python benchmarks/pipeline_curve.py [--size 224] [--batch 32] [--batches 24]

Each thread produces whole batches, as keras' PyDataset workers do; OpenCV's warp releases the GIL,
so threads scale with cores. Prints a Markdown table (median of 3 repeats) and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from edgemri.runtime.manifest import InputSpec
from edgemri.train.arrays import normalize_batch
from edgemri.train.augment import augment_batch, preset


def rate(threads: int, pixels: np.ndarray, spec: InputSpec, batches: int) -> float:
    """Images per second with ``threads`` producers over ``batches`` batches."""
    cfg = preset("mri")

    def one(index: int) -> int:
        x = normalize_batch(augment_batch(pixels, cfg, np.random.default_rng([0, index])), spec)
        return len(x)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(threads)))  # warm-up
        start = time.perf_counter()
        done = sum(pool.map(one, range(batches)))
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=24)
    args = parser.parse_args()
    pixels = np.random.default_rng(0).integers(0, 256, (args.batch, args.size, args.size, 3), dtype=np.uint8)
    spec = InputSpec(args.size, args.size)
    cores = os.cpu_count() or 1
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores; {args.size} px, batch {args.batch}")
    print("| threads | img/s | speed-up |\n|---|---|---|")
    base = None
    for threads in range(1, cores + 1):
        r = float(np.median([rate(threads, pixels, spec, args.batches) for _ in range(3)]))
        base = base or r
        print(f"| {threads} | {r:,.0f} | {r / base:.2f}x |")


if __name__ == "__main__":
    main()
