"""Does a one-channel input make ConvMixer-edge's int8 faster? The stem question of issue 14, measured.

``int8_breakdown.py`` found the 8x8 patch stem on ``gray3`` input (one gray plane repeated three times)
1.5-2.6x slower in int8 than fp32, and estimated the whole model at about 0.6x fp32 if the three copies
were folded into one input channel. This measures that instead of estimating it: the run's Keras
model (safe mode) is rebuilt with a 1-channel input whose first convolution's kernel is summed over
the three input channels (exact: the channels are equal), both models are converted to TFLite fp32
and full-integer int8 (PTQ on the run's own training images, uint8 input, as ``edgemri convert``
quantizes), and all four are timed with LiteRT's default XNNPACK, interleaved, over ``--reps`` rounds.

    python benchmarks/gray_fold.py RUN [--threads 1,2] [--runs 200] [--reps 3]

Finding on a Zen 5 (docs/runtime.md): the fold saves 7-9% in *both* precisions, so int8/fp32 stays
0.72-0.74x at 1 thread; it is not the way to 0.6x, and a 1-channel file would lose MediaPipe Tasks
(3- or 4-channel image inputs only), so ``edgemri convert`` does not offer it.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

#: layers that treat every channel alike and may sit between the input and the first convolution
PASS_THROUGH = ("ZeroPadding2D",)


def first_conv(model: Any) -> Any:
    """The Conv2D that reads the model input, through padding only; ValueError when there is none."""
    tensor = model.inputs[0]
    for _ in range(4):
        readers = [layer for layer in model.layers if any(t is tensor for t in _inputs_of(layer))]
        if len(readers) != 1:
            break
        layer = readers[0]
        if type(layer).__name__ == "Conv2D" and layer.groups == 1 and layer.data_format == "channels_last":
            return layer
        if type(layer).__name__ not in PASS_THROUGH:
            break
        tensor = layer.output
    raise ValueError(f"{model.name}: the input does not feed one Conv2D (through padding only)")


def _inputs_of(layer: Any) -> list[Any]:
    nodes = getattr(layer, "_inbound_nodes", [])
    return list(nodes[0].input_tensors) if nodes else []


def fold_gray_input(keras: Any, model: Any) -> Any:
    """``model`` (3 equal input channels) rebuilt with one input channel and the first kernel summed over them."""
    if model.input_shape[-1] != 3:
        raise ValueError(f"{model.name}: {model.input_shape[-1]} input channels, not 3")
    stem = first_conv(model)
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            layer["config"]["batch_shape"] = [*layer["config"]["batch_shape"][:-1], 1]
        elif layer["config"].get("name") == stem.name:
            layer.pop("build_config", None)  # built for 3 channels; rebuilt for 1 when called
    folded = keras.Model.from_config(config)
    for old, new in zip(model.layers, folded.layers, strict=True):
        weights = old.get_weights()
        if old.name == stem.name:
            weights[0] = weights[0].sum(axis=2, keepdims=True, dtype=np.float64).astype(weights[0].dtype)
        new.set_weights(weights)
    return folded


def main() -> None:
    from int8_breakdown import load_run, p50_ms, timing_parser, to_tflite

    parser = timing_parser(__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    import tensorflow as tf

    from edgemri.bench.machine import describe_machine, machine_name

    run, model, keras, calib = load_run(args.run, args.calib)
    folded = fold_gray_input(keras, model)
    diff = np.abs(model.predict(calib, verbose=0) - folded.predict(calib[..., :1], verbose=0)).max()
    files = {"fp32 3ch": to_tflite(keras, tf, model, None), "fp32 1ch": to_tflite(keras, tf, folded, None),
             "int8 3ch": to_tflite(keras, tf, model, calib), "int8 1ch": to_tflite(keras, tf, folded, calib[..., :1])}
    threads = [int(t) for t in args.threads.split(",")]
    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.reps):  # interleaved, so drift hits every variant alike
        for t in threads:
            for name, flatbuffer in files.items():
                times.setdefault((name, t), []).append(p50_ms(flatbuffer, t, args.runs, args.warmup))
    m = describe_machine()
    print(f"{run.root.name}: {machine_name(m)}; fold max |prob diff| {diff:.1e}; LiteRT default (XNNPACK), "
          f"median over {args.reps} rounds of p50 of {args.runs} bare invokes (ms)\n")
    print("| threads | " + " | ".join(files) + " | int8/fp32 3ch | int8/fp32 1ch |")
    print("|---|" + "---|" * (len(files) + 2))
    for t in threads:
        med = {name: statistics.median(times[(name, t)]) for name in files}
        print(f"| {t} | " + " | ".join(f"{v:.3f}" for v in med.values())
              + f" | {med['int8 3ch'] / med['fp32 3ch']:.2f}x | {med['int8 1ch'] / med['fp32 1ch']:.2f}x |")


if __name__ == "__main__":
    main()
