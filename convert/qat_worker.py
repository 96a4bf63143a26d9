"""QAT worker: runs in its OWN process with ``TF_USE_LEGACY_KERAS=1`` (tfmot needs Keras 2).

Started by ``edgemri.convert.qat.run_qat`` as ``python -m edgemri.convert.qat_worker JOB.json``;
the job names an .npz of trained weights ``{layer::i: array}`` dumped by the Keras 3 parent (so
this process never reads a Keras 3 archive) and an .npz of prepared train/val pixels. Steps:
rebuild the architecture in tf_keras, copy weights by layer name, check the rebuild predicts what
the Keras 3 model predicted, annotate every layer for quantization (tfmot's default 8-bit config
where it knows the layer, an explicit output-only config for weightless layers it does not know,
an error for anything else: nothing stays float silently), fine-tune, save a SavedModel.
Result or error goes to ``JOB.result.json``.

Importing this module changes nothing in the importing process (the Keras 3 parent imports
``WEIGHT_SEP`` from here): Keras 2 is selected in the worker's own environment by
``qat._spawn``, and again under ``__main__`` below for a worker started by hand.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

WEIGHT_SEP = "::"
TOLERANCE = 1e-3  # max |p_tf_keras - p_keras3| after the weight copy


class WorkerError(Exception):
    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message, self.hint = message, hint


def copy_weights(model: Any, weights_npz: Path) -> list[str]:
    """Set every weighted layer's weights from the parent's dump; names and shapes must match."""
    with np.load(weights_npz, allow_pickle=False) as data:
        stored: dict[str, list[np.ndarray]] = {}
        for key in data.files:
            name, idx = key.rsplit(WEIGHT_SEP, 1)
            stored.setdefault(name, []).append((int(idx), data[key]))  # type: ignore[arg-type]
    copied = []
    for layer in model.layers:
        own = layer.get_weights()
        if not own:
            continue
        if layer.name not in stored:
            raise WorkerError(f"layer {layer.name!r} of the tf_keras rebuild has no weights in model.keras",
                              "The architecture options in config.json do not match the trained model")
        arrays = [a for _, a in sorted(stored[layer.name], key=lambda t: t[0])]
        if [a.shape for a in arrays] != [w.shape for w in own]:
            raise WorkerError(f"layer {layer.name!r}: weight shapes {[a.shape for a in arrays]} != "
                              f"{[w.shape for w in own]} in the rebuild",
                              "The architecture options in config.json do not match the trained model")
        layer.set_weights(arrays)
        copied.append(layer.name)
    return copied


def output_only_config(tfmot: Any) -> Any:
    """QuantizeConfig for weightless layers tfmot does not know: quantize the output (8-bit)."""
    base = tfmot.quantization.keras.QuantizeConfig
    quantizers = tfmot.quantization.keras.quantizers

    class OutputOnlyQuantizeConfig(base):  # type: ignore[misc, valid-type]
        def get_weights_and_quantizers(self, layer: Any) -> list:
            return []

        def get_activations_and_quantizers(self, layer: Any) -> list:
            return []

        def set_quantize_weights(self, layer: Any, quantize_weights: list) -> None:
            pass

        def set_quantize_activations(self, layer: Any, quantize_activations: list) -> None:
            pass

        def get_output_quantizers(self, layer: Any) -> list:
            return [quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                                      narrow_range=False)]

        def get_config(self) -> dict:
            return {}

    return OutputOnlyQuantizeConfig


_ACTIVATIONS_OK = {"relu", "swish", "gelu", "relu6", "linear", "softmax", "sigmoid", "tanh"}


_FOLDS_BN = {"Conv2D", "DepthwiseConv2D"}


def _producer(layer: Any) -> str | None:
    """Class name of the single layer feeding ``layer`` (None when several or none)."""
    nodes = getattr(layer, "inbound_nodes", None) or getattr(layer, "_inbound_nodes", [])
    inbound = nodes[0].inbound_layers if nodes else []
    inbound = inbound if isinstance(inbound, (list, tuple)) else [inbound]
    return type(inbound[0]).__name__ if len(inbound) == 1 else None


def plan_layers(model: Any, tfmot: Any) -> dict[str, str]:
    """{layer: how it is quantized}; raises WorkerError for a weighted layer tfmot cannot quantize."""
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as reg,
    )

    registry = reg.Default8BitQuantizeRegistry()
    plan = {}
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        act = getattr(getattr(layer, "activation", None), "__name__", None)
        if kind == "BatchNormalization":
            folded = _producer(layer) in _FOLDS_BN
            plan[layer.name] = ("folded into the preceding conv (tfmot transform)" if folded
                                else "output-only (explicit QuantizeConfig; converter folds it to int8 Mul/Add)")
        elif registry.supports(layer) and not (kind == "Activation" and act not in _ACTIVATIONS_OK):
            plan[layer.name] = "default-8bit"
        elif not layer.weights:
            plan[layer.name] = "output-only (explicit QuantizeConfig)"
        else:
            raise WorkerError(f"layer {layer.name!r} ({kind}) has weights that tfmot cannot quantize",
                              "Use an int8-friendly architecture (e.g. convmixer-edge) or add a QuantizeConfig "
                              "for it in convert/qat_worker.py")
    return plan


def quantize(model: Any, plan: dict[str, str], tf_keras: Any, tfmot: Any) -> Any:
    qk = tfmot.quantization.keras
    config_cls = output_only_config(tfmot)

    def annotate(layer: Any) -> Any:
        if plan.get(layer.name, "").startswith("output-only"):
            return qk.quantize_annotate_layer(layer, quantize_config=config_cls())
        if layer.name in plan:
            return qk.quantize_annotate_layer(layer)
        return layer

    annotated = tf_keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    with qk.quantize_scope({"OutputOnlyQuantizeConfig": config_cls}):
        return qk.quantize_apply(annotated)


def accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    probs = model.predict(x, batch_size=64, verbose=0)
    return float((probs.argmax(1) == y).mean()) if len(y) else float("nan"), probs


def fit_targets(labels: np.ndarray, fp32_probs: np.ndarray, distill: float,
                num_classes: int) -> tuple[np.ndarray, str]:
    """Training targets and loss: the labels, or (distill > 0) labels mixed with FP32's probabilities."""
    if distill <= 0:
        return labels, "sparse_categorical_crossentropy"
    onehot = np.eye(num_classes, dtype=np.float32)[labels]
    return ((1.0 - distill) * onehot + distill * fp32_probs).astype(np.float32), "categorical_crossentropy"


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    result_path = Path(f"{job_path}.result.json")
    try:
        result = run(job)
        result_path.write_text(json.dumps(result))
        return 0
    except WorkerError as exc:
        result_path.write_text(json.dumps({"error": exc.message, "hint": exc.hint}))
        return 2
    except Exception as exc:  # noqa: BLE001 - bug or library failure: traceback kept for --debug
        result_path.write_text(json.dumps({"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                                           if str(exc) else type(exc).__name__,
                                           "hint": "Run with EDGEMRI_DEBUG=1 to see the worker traceback",
                                           "traceback": traceback.format_exc()}))
        return 2


def run(job: dict) -> dict:
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras

    from edgemri.train.models import build

    tf_keras.utils.set_random_seed(int(job.get("seed", 0)))
    with np.load(job["data"], allow_pickle=False) as d:
        x_train, y_train, x_val, y_val, ref, ref_train = (
            d[k] for k in ("x_train", "y_train", "x_val", "y_val", "ref_val", "ref_train"))
    model = build(job["arch"], tuple(job["input_shape"]), int(job["num_classes"]), keras=tf_keras,
                  **job["arch_options"])
    copied = copy_weights(model, Path(job["weights"]))
    fp32_acc, probs = accuracy(model, x_val, y_val)
    diff = float(np.abs(probs - ref).max()) if len(ref) else 0.0
    if diff > TOLERANCE:
        raise WorkerError(f"the tf_keras rebuild disagrees with model.keras (max prob diff {diff:.3g})",
                          "A layer does not map 1:1 between Keras 3 and tf_keras")
    plan = plan_layers(model, tfmot)
    qat = quantize(model, plan, tf_keras, tfmot)
    targets, loss = fit_targets(y_train, ref_train, float(job["distill"]), int(job["num_classes"]))
    qat.compile(optimizer=tf_keras.optimizers.Adam(float(job["lr"])), loss=loss, metrics=["accuracy"])
    before, _ = accuracy(qat, x_val, y_val)
    val = (x_val, y_val if loss.startswith("sparse") else np.eye(int(job["num_classes"]))[y_val])
    history = qat.fit(x_train, targets, epochs=int(job["epochs"]), batch_size=int(job["batch_size"]),
                      validation_data=val if len(y_val) else None, verbose=2)
    qat_acc, qprobs = accuracy(qat, x_val, y_val)
    sig = tf.TensorSpec([None, *job["input_shape"]], tf.float32, name="input")
    serve = tf.function(lambda x: {"output_0": qat(x, training=False)}, input_signature=[sig])
    tf.saved_model.save(qat, job["saved_model"], signatures={"serving_default": serve})
    agree = float((qprobs.argmax(1) == probs.argmax(1)).mean()) if len(y_val) else float("nan")
    return {
        "fp32_val_accuracy": fp32_acc, "qat_val_accuracy_before_finetune": before, "qat_val_accuracy": qat_acc,
        "qat_fp32_top1_agreement": agree, "weight_copy_max_prob_diff": diff, "layers_copied": len(copied),
        "quantization_plan": plan, "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "train_images": len(y_train), "val_images": len(y_val),
    }


def _select_keras2() -> None:
    """Keras 2 must be chosen before tensorflow is imported anywhere in the worker's process."""
    from edgemri import quiet

    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    quiet.configure(quiet.debug_requested())


if __name__ == "__main__":
    _select_keras2()
    sys.exit(main(sys.argv[1]))
