"""The default model: a compact CNN for 2-core CPU training that generalizes.

Design: five conv blocks (a 3x3 conv with batch norm, then max pooling; widths doubling
from 16) and a global-average-pooled head with dropout. One conv per block keeps an epoch
of 5,000 images at 128 px to a few minutes on two CPU cores. Global pooling keeps the parameter count small
(a dense layer over a flattened map is where simple pneumonia CNNs overfit) and makes
the last conv block's maps directly interpretable by Grad-CAM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
from keras import layers

from models.layers import PerImageStandardization

NORMALIZATIONS = ("rescale", "standardize")
# Each image by its own mean and deviation: exposure differs between acquisitions
# (benchmarks/shift.py, docs/benchmarks.md); --normalization's default.
DEFAULT_NORMALIZATION = "standardize"

if TYPE_CHECKING:  # keras_tuner is imported only where a search runs or its result is read
    import keras_tuner


# One block (and one 2x2 pooling) per width; the tuner's deepest search is as deep.
DEFAULT_FILTERS = (16, 32, 64, 128, 256)


def conv_block(
    x: keras.KerasTensor, filters: int, index: int, l2: float, convs: int = 1
) -> keras.KerasTensor:
    """`convs` times a bias-free 3x3 convolution, batch normalization and ReLU, then 2x2 max
    pooling, every layer named `block<index>_...` so summaries and reports read by block."""
    for j in range(convs):
        x = layers.Conv2D(
            filters,
            3,
            padding="same",
            use_bias=False,
            kernel_regularizer=keras.regularizers.L2(l2) if l2 else None,
            name=f"block{index}_conv{j + 1}",
        )(x)
        # momentum 0.9: with a few dozen steps an epoch, the default 0.99 leaves the
        # inference statistics far from the data for many epochs (val AUC swings).
        x = layers.BatchNormalization(momentum=0.9, name=f"block{index}_bn{j + 1}")(x)
        x = layers.ReLU(name=f"block{index}_relu{j + 1}")(x)
    return layers.MaxPooling2D(name=f"block{index}_pool")(x)


def build_cnn(
    image_size: int = 128,
    channels: int = 1,
    num_classes: int = 2,
    filters: tuple[int, ...] = DEFAULT_FILTERS,
    dropout: float = 0.4,
    l2: float = 1e-4,
    convs_per_block: int = 1,
    normalization: str = DEFAULT_NORMALIZATION,
    multilabel: bool = False,
) -> keras.Model:
    """Input: (image_size, image_size, channels) raw pixels in [0, 255].

    `normalization`: "rescale" divides by 255; "standardize" gives each image zero mean
    and unit variance by its own statistics (models/layers.py). `multilabel`: the head
    has one sigmoid per class (models.cnn.output_layer).
    """
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = input_normalization(normalization)(inputs)
    for index, width in enumerate(filters, start=1):
        x = conv_block(x, width, index, l2, convs_per_block)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = output_layer(num_classes, multilabel)(x)
    return keras.Model(inputs, outputs, name="cnn")


def input_normalization(name: str) -> layers.Layer:
    """The model's first layer, from pixels in [0, 255] to its input scale: `rescale` divides
    by 255; `standardize` gives each image zero mean and unit variance (PerImageStandardization)."""
    if name == "rescale":
        return layers.Rescaling(1.0 / 255.0, name="rescale")
    if name == "standardize":
        # float32 even under a mixed policy: a mean and deviation of 0-255 pixels in
        # bfloat16 (8 significant bits) would be off by about a grey level.
        return PerImageStandardization(name="standardize", dtype="float32")
    raise ValueError(f"unknown --normalization {name!r} (rescale or standardize)")


def output_layer(num_classes: int, multilabel: bool = False) -> layers.Dense:
    """One sigmoid unit for two classes, else a softmax over the classes; `multilabel`:
    one sigmoid per finding (`num_classes` findings, each present or not on its own).

    float32 even under a mixed-precision policy: probabilities near 0 and 1 need it.
    """
    if multilabel:
        return layers.Dense(num_classes, activation="sigmoid", dtype="float32", name="prediction")
    if num_classes == 2:
        return layers.Dense(1, activation="sigmoid", dtype="float32", name="prediction")
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="prediction")


def search_space(hp: keras_tuner.HyperParameters) -> dict[str, Any]:
    """The CNN's tuning space, as keyword arguments for build_cnn plus training settings."""
    base = hp.Choice("base_filters", [8, 16, 32])
    depth = hp.Int("depth", 3, 5)
    return {
        "filters": tuple(base * 2**i for i in range(depth)),
        "dropout": hp.Float("dropout", 0.1, 0.5, step=0.1),
        "learning_rate": hp.Float("learning_rate", 1e-4, 3e-3, sampling="log"),
        "focal_gamma": hp.Choice("focal_gamma", [0.0, 1.0, 2.0, 3.0]),
    }


def tuned_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Best hyperparameter values (tuner/best_hyperparameters.json) -> search_space's settings."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return search_space(hp)
