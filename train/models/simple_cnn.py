"""The three-block CNN of the published notebooks (16/32/64 filters), and edgemri's earlier variant.

``simple-cnn`` is the notebooks' network as published: per block two conv3x3 + BN + ReLU, then a
2x2 max-pool; then *flatten*, dropout 0.2 and a dense softmax layer. Flattening keeps where a
lesion is (a pituitary tumour sits on the midline, a meningioma on the skull), which global
pooling throws away. ``simple-cnn-gap`` is the variant edgemri shipped first (one conv per block,
global average pooling): it is kept under its own name so runs trained with it can be rebuilt
(QAT, ``--resume``) by naming it, and because it is smaller and size-independent.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from edgemri.errors import UsageError
from edgemri.train.models.common import HEAD_PREFIX, ModelEntry, classifier_head, model_input
from edgemri.train.models.registry import MODELS

#: Weight initializations: Keras' default, or PyTorch's (``kaiming_uniform_(a=sqrt(5))`` for Conv2d and
#: Linear: U(+-1/sqrt(fan_in)), 1.7-2.4x narrower than Glorot here), which a notebook written in
#: PyTorch trained from. Under BatchNorm only the scale of a weight relative to Adam's step changes,
#: which is how fast its direction moves: it matters for a 10-epoch budget, not for a converged model.
INITS = ("glorot", "torch")


def _filters(filters: str) -> list[int]:
    return [int(f) for f in str(filters).split(",")]


def _initializer(keras: ModuleType, init: str) -> Any:
    if init not in INITS:
        raise UsageError(f"unknown init {init!r} for simple-cnn", f"Choose one of: {', '.join(INITS)}")
    if init == "torch":  # limit sqrt(3 * scale / fan_in) = 1/sqrt(fan_in)
        return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")
    return "glorot_uniform"


def _conv_bn_relu(layers: Any, x: Any, n: int, name: str, init: Any = "glorot_uniform") -> Any:
    """conv3x3 (no bias: BN's beta is the bias) -> BN -> ReLU, every layer named after ``name``."""
    x = layers.Conv2D(n, 3, padding="same", use_bias=False, kernel_initializer=init, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_simple_cnn(keras: ModuleType, input_shape: tuple[int, int, int], num_classes: int,
                     filters: str = "16,32,64", dropout: float = 0.2, init: str = "glorot") -> Any:
    """2 x (conv3x3 -> BN -> ReLU) -> max-pool per block, then flatten, dropout, dense softmax."""
    layers = keras.layers
    initializer = _initializer(keras, init)
    inputs = model_input(keras, input_shape)
    x = inputs
    for i, n in enumerate(_filters(filters), 1):
        for j in (1, 2):
            x = _conv_bn_relu(layers, x, n, f"block{i}_{j}", initializer)
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    x = layers.Flatten(name=f"{HEAD_PREFIX}flatten")(x)
    outputs = classifier_head(keras, x, num_classes, dropout, pool=False, kernel_initializer=initializer)
    return keras.Model(inputs, outputs, name="simple_cnn")


def build_simple_cnn_gap(keras: ModuleType, input_shape: tuple[int, int, int], num_classes: int,
                         filters: str = "16,32,64", dropout: float = 0.2) -> Any:
    """One conv3x3 -> BN -> ReLU -> max-pool per block, then global pooling, dropout, dense softmax.

    Layer names are those of the runs trained before ``simple-cnn`` became the faithful network.
    """
    layers = keras.layers
    inputs = model_input(keras, input_shape)
    x = inputs
    for i, n in enumerate(_filters(filters), 1):
        x = _conv_bn_relu(layers, x, n, f"block{i}")
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    outputs = classifier_head(keras, x, num_classes, dropout)
    return keras.Model(inputs, outputs, name="simple_cnn_gap")


MODELS.add(ModelEntry(
    name="simple-cnn", builder=build_simple_cnn, defaults={"filters": "16,32,64", "dropout": 0.2, "init": "glorot"},
    min_size=8,
    description="the notebooks' CNN: 3 blocks of 2x (conv3x3 + BN + ReLU) + max-pool (16/32/64), flatten, "
                "dropout, dense softmax; init glorot (Keras) or torch (PyTorch's default)",
))
MODELS.add(ModelEntry(
    name="simple-cnn-gap", builder=build_simple_cnn_gap, defaults={"filters": "16,32,64", "dropout": 0.2},
    min_size=8,
    description="edgemri's first simple-cnn: 3 blocks conv3x3 + BN + ReLU + max-pool, global average pool, "
                "dropout, dense softmax",
))
