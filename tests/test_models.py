"""Architectures: build, forward pass, deterministic names, flat graphs, tf_keras parity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from edgemri.errors import ModelFileError, UsageError
from edgemri.train.models import MODELS, build
from edgemri.train.models.common import load_pretrained, set_backbone_trainable

#: Tiny but structurally complete settings, so every arch builds in seconds (others: their defaults).
TINY = {"convmixer": {"dim": 16, "depth": 2, "kernel": 3, "patch": 4},
        "convmixer-edge": {"dim": 16, "depth": 2, "kernel": 3, "patch": 4},
        "mobilenetv2": {"alpha": 0.35}, "mobilenet": {"alpha": 0.25}}
SHAPE = (32, 32, 3)
#: Every registered architecture: a new one gets each per-architecture test below for free.
ARCHS = MODELS.names()


def _build(name: str, classes: int = 3):
    return build(name, SHAPE, classes, **TINY.get(name, {}))


@pytest.fixture(scope="module")
def built() -> dict:
    return {name: _build(name) for name in MODELS.names()}


@pytest.mark.parametrize("name", ARCHS)
def test_forward_pass_gives_probabilities(built, name):
    model = built[name]
    x = np.random.default_rng(0).uniform(-1, 1, (2, *SHAPE)).astype(np.float32)
    probs = np.asarray(model(x, training=False))  # eager: no tracing of 400-layer graphs
    assert probs.shape == (2, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", ARCHS)
def test_layer_names_deterministic_unique_and_explicit(built, name):
    first = [layer.name for layer in built[name].layers]
    again = [layer.name for layer in _build(name).layers]  # counters advanced: auto names would differ
    assert first == again, name
    assert len(set(first)) == len(first), name
    assert first[0] == "input" and first[-1] == "head_probs", name


@pytest.mark.parametrize("name", ARCHS)
def test_graphs_are_flat_normalization_free_and_bn_momentum_fixed(built, name):
    model = built[name]
    kinds = {type(layer).__name__ for layer in model.layers}
    assert not any(isinstance(layer, keras.Model) for layer in model.layers), name
    assert not kinds & {"Rescaling", "Normalization", "RandomFlip", "RandomRotation", "RandomZoom"}, name
    moms = {layer.momentum for layer in model.layers if type(layer).__name__ == "BatchNormalization"}
    assert moms == {0.9}, (name, moms)


@pytest.mark.parametrize("name", ARCHS)
def test_entry_is_complete_and_its_defaults_build(name):
    """What the CLI help and the docs table show must be there, and the defaults must be accepted."""
    entry = MODELS.get(name)
    assert entry.name == name and entry.description and entry.min_size >= 1
    assert entry.resolve_options({}) == entry.defaults
    assert entry.resolve_options({k: str(v) for k, v in entry.defaults.items()}) == entry.defaults  # CLI strings


def test_convmixer_edge_has_no_gelu_and_convmixer_does(built):
    def activations(model):
        return {layer.get_config().get("activation") for layer in model.layers}

    assert "gelu" in activations(built["convmixer"])
    assert "gelu" not in activations(built["convmixer-edge"])
    assert any(type(layer).__name__ == "ReLU" and layer.get_config()["max_value"] == 6.0
               for layer in built["convmixer-edge"].layers)


def test_simple_cnn_is_the_published_network(built):
    """Per block two conv3x3 + BN + ReLU (16/32/64), a 2x2 max-pool; then flatten, dropout 0.2, dense softmax."""
    layers = built["simple-cnn"].layers[1:]
    kinds = [type(layer).__name__ for layer in layers]
    block = ["Conv2D", "BatchNormalization", "ReLU"] * 2 + ["MaxPooling2D"]
    assert kinds == block * 3 + ["Flatten", "Dropout", "Dense"]
    convs = [layer for layer in layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [16, 16, 32, 32, 64, 64]
    assert {c.kernel_size for c in convs} == {(3, 3)} and {c.padding for c in convs} == {"same"}
    assert {layer.pool_size for layer in layers if type(layer).__name__ == "MaxPooling2D"} == {(2, 2)}
    dropout, dense = layers[-2], layers[-1]
    assert dropout.rate == 0.2 and dense.get_config()["activation"] == "softmax"
    assert dense.kernel.shape[0] == (SHAPE[0] // 8) * (SHAPE[1] // 8) * 64  # flattened, not pooled
    gap_kinds = [type(layer).__name__ for layer in built["simple-cnn-gap"].layers[1:]]
    assert gap_kinds == ["Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D"] * 3 + \
        ["GlobalAveragePooling2D", "Dropout", "Dense"]


def test_simple_cnn_torch_init_is_pytorchs_uniform_bound():
    """init=torch: every kernel U(+-1/sqrt(fan_in)), as PyTorch's Conv2d/Linear; glorot is wider after
    the first conv (there fan_out >> fan_in makes both about equal)."""
    torch_init = build("simple-cnn", SHAPE, 3, init="torch")
    glorot = build("simple-cnn", SHAPE, 3)
    for a, b in zip(torch_init.layers, glorot.layers):
        if type(a).__name__ not in ("Conv2D", "Dense"):
            continue
        kernel = np.asarray(a.kernel)
        bound = 1.0 / np.sqrt(np.prod(kernel.shape[:-1]))
        assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.9 * bound
        if a.name != "block1_1_conv":
            assert np.asarray(b.kernel).std() > 1.3 * kernel.std()
    with pytest.raises(UsageError, match="unknown init 'he' for simple-cnn"):
        build("simple-cnn", SHAPE, 3, init="he")


def test_options_are_applied_and_checked():
    small = build("convmixer", SHAPE, 2, dim="8", depth="1", kernel=3, patch=4)  # CLI strings coerced
    assert small.get_layer("stem_conv").filters == 8
    assert [layer.name for layer in small.layers].count("mixer0_add") == 1
    with pytest.raises(UsageError, match="unknown architecture option"):
        build("mobilenetv2", SHAPE, 3, depth=3)
    with pytest.raises(UsageError, match="not a valid int"):
        build("convmixer", SHAPE, 3, dim="wide")
    with pytest.raises(UsageError, match="below the minimum"):
        build("mobilenetv2", (16, 16, 3), 3)
    with pytest.raises(UsageError) as info:
        build("mobilenet-v2", SHAPE, 3)
    assert 'Did you mean "mobilenetv2"?' in info.value.one_line()  # the hint, after the message


def _write_legacy_h5(model, path, skip=()):
    """A by-name .h5 like the published ImageNet files (layer_names / weight_names attributes)."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        names = [layer.name for layer in model.layers if layer.weights and layer.name not in skip]
        f.attrs["layer_names"] = [n.encode() for n in names]
        for name in names:
            group = f.create_group(name)
            weights = model.get_layer(name).get_weights()
            wnames = [f"{name}/w{i}".encode() for i in range(len(weights))]
            group.attrs["weight_names"] = wnames
            for wname, value in zip(wnames, weights):
                group.create_dataset(wname.decode(), data=value)


@pytest.mark.parametrize("suffix", [".h5", ".weights.h5"])
def test_pretrained_weights_load_skipping_the_mismatched_head(tmp_path, suffix):
    source = _build("mobilenetv2", classes=5)
    path = tmp_path / f"imagenet_like{suffix}"
    if suffix == ".h5":
        _write_legacy_h5(source, path)
    else:
        source.save_weights(path)
    target = _build("mobilenetv2", classes=3)  # different head: must be skipped, not fail
    before = target.get_layer("head_probs").get_weights()[0].copy()
    assert not np.array_equal(target.get_layer("Conv1").get_weights()[0],
                              source.get_layer("Conv1").get_weights()[0])
    load_pretrained(target, path)
    np.testing.assert_array_equal(target.get_layer("Conv1").get_weights()[0],
                                  source.get_layer("Conv1").get_weights()[0])
    np.testing.assert_array_equal(target.get_layer("head_probs").get_weights()[0], before)
    with pytest.raises(ModelFileError, match="not found"):
        load_pretrained(target, tmp_path / "missing.h5")


def test_weights_from_a_run_directory_copy_matching_layers_and_refuse_another_architecture(tmp_path):
    """--weights RUN: start a new task (3 classes) from one of your own models (4 classes), head left fresh."""
    source = _build("mobilenetv2", classes=4)
    (tmp_path / "run").mkdir()
    source.save(tmp_path / "run" / "model.keras")
    target = _build("mobilenetv2", classes=3)
    before = target.get_layer("head_probs").get_weights()[0].copy()
    load_pretrained(target, tmp_path / "run")
    np.testing.assert_array_equal(target.get_layer("Conv1").get_weights()[0], source.get_layer("Conv1").get_weights()[0])
    np.testing.assert_array_equal(target.get_layer("head_probs").get_weights()[0], before)
    with pytest.raises(ModelFileError, match="no layer .* matches"):
        load_pretrained(_build("simple-cnn", classes=3), tmp_path / "run" / "model.keras")


def test_freeze_then_unfreeze_last_layers():
    model = _build("mobilenetv2")
    set_backbone_trainable(model, 0)
    trainable = [layer.name for layer in model.layers if layer.trainable and layer.weights]
    assert trainable == ["head_probs"]
    set_backbone_trainable(model, 4)
    weighted = [layer for layer in model.layers if layer.weights and layer.name != "head_probs"]
    unfrozen = [layer.name for layer in weighted if layer.trainable]
    assert len(unfrozen) == 4 and all(layer.trainable is False for layer in weighted[:-8])
    assert not any("bn" in name.lower() for name in unfrozen)  # BN stays frozen while fine-tuning


TF_KERAS_SCRIPT = textwrap.dedent("""
    import json, sys
    import tf_keras
    from edgemri.train.models import MODELS, build
    tiny = json.loads(sys.argv[1])
    out = {}
    for name in MODELS.names():
        model = build(name, (32, 32, 3), 3, keras=tf_keras, **tiny.get(name, {}))
        out[name] = [[layer.name, [list(w.shape) for w in layer.get_weights()]] for layer in model.layers]
    print("RESULT" + json.dumps(out))
""")


def test_every_arch_builds_under_tf_keras_with_the_same_layers(built):
    """One subprocess for all archs: Keras 3 and tf_keras in one process is fragile."""
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", TF_KERAS_SCRIPT, json.dumps(TINY)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT"))
    legacy = json.loads(line[len("RESULT"):])
    for name, model in built.items():
        ours = [[layer.name, [list(w.shape) for w in layer.get_weights()]] for layer in model.layers]
        assert legacy[name] == ours, name
