"""Where a model's int8 time goes, stage by stage: the question behind issue 14's third finding.

A bare-invoke p50 says int8 is 0.85x of fp32 for ConvMixer-edge but 0.59x for MobileNetV2; it does
not say why. This cuts the run's Keras model (safe mode) after each stage — the stem, each mixer's
depthwise half (depthwise conv + residual add) and pointwise half, the head — converts every prefix
to TFLite fp32 and to full-integer int8 (post-training, calibrated on the run's own training images,
uint8 input like the published files, int8 output), times each prefix with LiteRT's default
(XNNPACK) configuration, and prints each stage's increment in both precisions. Prefix timing keeps
the real weights, shapes and quantization parameters, which synthetic per-op probes would not.
Increments of sub-0.05 ms stages are noisy: run it on an idle machine and read the sums.

    python benchmarks/int8_breakdown.py RUN [--threads 1,2] [--runs 200] [--calib 64]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def stage_cuts(model: Any) -> list[tuple[str, str]]:
    """(stage label, last layer name) in graph order: a cut after every add / activation that ends a stage."""
    names = [layer.name for layer in model.layers]
    cuts: list[tuple[str, str]] = []
    for name in names:
        if name == "stem_act":
            cuts.append(("stem (patch conv + BN + ReLU6)", name))
        elif name.endswith("_add"):
            cuts.append((f"{name[:-4]} depthwise + residual add", name))
        elif name.endswith("_pw_act"):
            cuts.append((f"{name[:-7]} pointwise 1x1", name))
    cuts.append(("head (pool + dense + softmax)", names[-1]))
    return cuts


def to_tflite(keras: Any, tf: Any, model: Any, calib: np.ndarray | None) -> bytes:
    """fp32 (``calib`` None) or full-integer int8 with uint8 input, the way `edgemri convert` quantizes."""
    with tempfile.TemporaryDirectory() as tmp:
        sig = [tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="input")]
        model.export(tmp, format="tf_saved_model", input_signature=sig, verbose=False)
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if calib is not None:
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type, conv.inference_output_type = tf.uint8, tf.int8
        return bytes(conv.convert())


def p50_ms(flatbuffer: bytes, threads: int, runs: int, warmup: int) -> float:
    from edgemri.runtime.backends.litert import find_interpreter

    interp = find_interpreter()[0](model_content=flatbuffer, num_threads=threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], np.random.default_rng(0).integers(0, 255, inp["shape"]).astype(inp["dtype"]))
    for _ in range(warmup):
        interp.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interp.invoke()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def timing_parser(description: str) -> argparse.ArgumentParser:
    """The options every int8 probe here shares: the run, thread counts, invokes, calibration images."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("run", type=Path)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--calib", type=int, default=64)
    return parser


def load_run(path: Path, calib_images: int) -> tuple[Any, Any, Any, np.ndarray]:
    """(run, Keras model loaded in safe mode, keras module, calibration inputs as float32 NHWC)."""
    import keras

    from edgemri.convert.calibration import calibration_set
    from edgemri.rundir import RunDir

    run = RunDir.open(path)
    model = keras.models.load_model(run.root / "model.keras", compile=False, safe_mode=True)
    return run, model, keras, calibration_set(run, calib_images).x.astype(np.float32)


def main() -> None:
    args = timing_parser(__doc__.splitlines()[0]).parse_args()
    import tensorflow as tf

    from edgemri.bench.machine import describe_machine, machine_name

    run, model, keras, calib = load_run(args.run, args.calib)
    threads = [int(t) for t in args.threads.split(",")]
    rows = []
    for label, layer in stage_cuts(model):
        prefix = keras.Model(model.input, model.get_layer(layer).output)
        files = {"fp32": to_tflite(keras, tf, prefix, None), "int8": to_tflite(keras, tf, prefix, calib)}
        rows.append((label, {(p, t): p50_ms(f, t, args.runs, args.warmup) for p, f in files.items() for t in threads}))
    m = describe_machine()
    print(f"{run.root.name}: {machine_name(m)}, {m['cores_usable']} usable cores; LiteRT default (XNNPACK), "
          f"p50 of {args.runs} bare invokes after {args.warmup} warm-ups; cumulative prefixes, increments shown\n")
    head = " | ".join(f"fp32 {t}t | int8 {t}t | int8/fp32 {t}t" for t in threads)
    print(f"| stage | {head} |")
    print("|---|" + "---|" * (3 * len(threads)))
    previous: dict[tuple[str, int], float] = {}
    for label, times in rows:
        cells = []
        for t in threads:
            inc = {p: times[(p, t)] - previous.get((p, t), 0.0) for p in ("fp32", "int8")}
            ratio = f"{inc['int8'] / inc['fp32']:.2f}x" if inc["fp32"] > 0.005 else "–"
            cells += [f"{inc['fp32']:.3f}", f"{inc['int8']:.3f}", ratio]
        print(f"| {label} | " + " | ".join(cells) + " |")
        previous = times
    total = rows[-1][1]
    cells = []
    for t in threads:
        cells += [f"**{total[('fp32', t)]:.3f}**", f"**{total[('int8', t)]:.3f}**",
                  f"**{total[('int8', t)] / total[('fp32', t)]:.2f}x**"]
    print("| whole model | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
