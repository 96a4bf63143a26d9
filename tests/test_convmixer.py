"""ConvMixer variants: the edge default (kernel 5), the paper's (kernel 9), BN order and stacked mixing."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras")

from edgemri.errors import UsageError
from edgemri.train.models import MODELS, build

TINY = {"dim": 8, "depth": 2, "patch": 4}


def _kinds(model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def test_edge_default_mixes_with_kernel_5_folded_and_the_paper_keeps_9_in_its_order():
    assert MODELS.get("convmixer-edge").defaults["kernel"] == 5
    assert MODELS.get("convmixer-edge").defaults["order"] == "fold"
    assert (MODELS.get("convmixer").defaults["kernel"], MODELS.get("convmixer").defaults["order"]) == (9, "paper")
    edge = build("convmixer-edge", (32, 32, 3), 3, **TINY)
    paper = build("convmixer", (32, 32, 3), 3, **TINY)
    assert edge.get_layer("mixer0_dw").kernel_size == (5, 5)
    assert paper.get_layer("mixer0_dw").kernel_size == (9, 9)


def test_fold_order_puts_batchnorm_before_the_activation_and_stack_chains_depthwise():
    paper = _kinds(build("convmixer-edge", (32, 32, 3), 3, **TINY, order="paper"))
    fold = _kinds(build("convmixer-edge", (32, 32, 3), 3, **TINY, stack=2))
    i = paper.index("DepthwiseConv2D")
    assert paper[i:i + 3] == ["DepthwiseConv2D", "ReLU", "BatchNormalization"]
    j = fold.index("DepthwiseConv2D")
    assert fold[j:j + 4] == ["DepthwiseConv2D", "DepthwiseConv2D", "BatchNormalization", "ReLU"]
    assert paper.count("DepthwiseConv2D") == 2 and fold.count("DepthwiseConv2D") == 4


@pytest.mark.parametrize("opts, needle", [({"order": "sideways"}, "order"), ({"stack": 0}, "stack")])
def test_bad_variant_options_are_one_line_errors(opts, needle):
    with pytest.raises(UsageError, match=needle):
        build("convmixer-edge", (32, 32, 3), 3, **TINY, **opts)


def test_int8_breakdown_cuts_every_stage_of_a_convmixer_once_in_graph_order():
    """benchmarks/int8_breakdown.py times prefixes ending at these layers: stem, depthwise + add, pointwise, head."""
    module = _bench_module("int8_breakdown")
    model = build("convmixer-edge", (32, 32, 3), 3, **TINY)
    cuts = module.stage_cuts(model)
    assert [layer for _, layer in cuts] == ["stem_act", "mixer0_add", "mixer0_pw_act", "mixer1_add", "mixer1_pw_act",
                                            model.layers[-1].name]
    names = [layer.name for layer in model.layers]
    assert [names.index(layer) for _, layer in cuts] == sorted(names.index(layer) for _, layer in cuts)


def _bench_module(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gray_fold_gives_the_same_probabilities_from_one_channel():
    """benchmarks/gray_fold.py's 1-channel rebuild must compute what the 3-channel model does on gray3 input."""
    keras = pytest.importorskip("keras")
    module = _bench_module("gray_fold")
    model = build("convmixer-edge", (32, 32, 3), 3, **TINY)
    folded = module.fold_gray_input(keras, model)
    assert folded.input_shape[-1] == 1
    assert folded.get_layer("stem_conv").get_weights()[0].shape[2] == 1
    gray = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 1)).astype(np.float32)
    expected = model.predict(np.repeat(gray, 3, axis=-1), verbose=0)
    np.testing.assert_allclose(folded.predict(gray, verbose=0), expected, atol=1e-5)
    # and a model whose input feeds no convolution has nothing to fold
    inputs = keras.Input((8, 8, 3))
    with pytest.raises(ValueError, match="does not feed one Conv2D"):
        module.fold_gray_input(keras, keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs))))
