"""Latency of ConvMixer-edge token-mixing variants under LiteRT, XNNPACK on and off (issue 14).

    python benchmarks/convmixer_variants.py [VARIANT ...]   # default: every variant below

Builds each variant at the published size (128 px, dim 128, depth 6, patch 8, 4 classes) with
random weights (latency does not depend on them), converts it to TFLite fp32 and full-int8 (PTQ on
seeded random images) and prints one JSON line per variant: p50 ms of 40 batch-1 runs after 5
warm-ups, 1 thread. Accuracy of the trained variants is in docs/train.md ("ConvMixer-edge").
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from edgemri.quiet import configure

VARIANTS: dict[str, dict] = {
    "k9-paper": {"kernel": 9}, "k7-paper": {"kernel": 7}, "k5-paper": {"kernel": 5}, "k3-paper": {"kernel": 3},
    "k9-fold": {"kernel": 9, "order": "fold"}, "k7-fold": {"kernel": 7, "order": "fold"},
    "k5-fold": {"kernel": 5, "order": "fold"}, "5x5x2-fold": {"kernel": 5, "order": "fold", "stack": 2},
    "3x3x4-fold": {"kernel": 3, "order": "fold", "stack": 4},
}
SIZE = 128


def tflite(model, int8: bool) -> bytes:
    import tensorflow as tf

    from edgemri.convert.tflite import set_full_integer

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(0)
        set_full_integer(conv, lambda: ([rng.uniform(-1, 1, (1, SIZE, SIZE, 3)).astype(np.float32)]
                                        for _ in range(16)))
    return bytes(conv.convert())


def p50_ms(blob: bytes, xnnpack: bool, runs: int = 40) -> float:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kw = {} if xnnpack else {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    interp = Interpreter(model_content=blob, num_threads=1, **kw)
    interp.allocate_tensors()
    detail = interp.get_input_details()[0]
    x = np.zeros(detail["shape"], detail["dtype"])
    times = []
    for i in range(5 + runs):
        start = time.perf_counter()
        interp.set_tensor(detail["index"], x)
        interp.invoke()
        if i >= 5:
            times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1e3, 2)


def main(names: list[str]) -> None:
    configure(debug=False)
    from edgemri.train.models import build

    for name in names or list(VARIANTS):
        model = build("convmixer-edge", (SIZE, SIZE, 3), 4, dim=128, depth=6, patch=8, **VARIANTS[name])
        row: dict = {"variant": name, "params": int(model.count_params())}
        for int8 in (False, True):
            blob = tflite(model, int8)
            tag = "int8" if int8 else "fp32"
            row[f"{tag}_xnnpack_ms"] = p50_ms(blob, True)
            row[f"{tag}_builtin_ms"] = p50_ms(blob, False)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
