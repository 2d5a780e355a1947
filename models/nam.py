"""Neural Additive Model (Agarwal et al., "Neural Additive Models: Interpretable Machine
Learning with Neural Nets", NeurIPS 2021) in Keras 3.

    logit(x) = bias + sum_i f_i(x_i)

Each f_i is a small subnetwork that sees only input column i, so each is a curve that
can be plotted and the prediction is exactly the sum of the curves plus the bias. The
first layer uses exp-centred units (ExU: relu1(exp(w) * (x - c)), able to fit sharp
jumps) or plain ReLU units. Regularizers from the paper: dropout inside the subnetworks,
feature dropout (dropping whole f_i terms), an output penalty (mean squared f_i),
and weight decay.

All subnetworks run as one batched einsum: weights carry a leading feature axis, so
column i's output can depend only on column i's weights and input.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
from keras import ops

from models.mlp import LOGIT_LAYER, compile_binary

CONTRIBUTIONS_LAYER = "contributions"
FIRST_LAYERS = ("exu", "relu")


@keras.saving.register_keras_serializable(package="nam")
class FeatureNets(keras.layers.Layer):
    """(batch, F) -> (batch, F): column i mapped through its own subnetwork f_i."""

    def __init__(
        self,
        hidden: Sequence[int] = (32, 16),
        first_layer: str = "relu",
        dropout: float = 0.1,
        l2: float = 1e-5,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if first_layer not in FIRST_LAYERS:
            raise ValueError(f"first_layer must be one of {FIRST_LAYERS}, got {first_layer!r}")
        self.hidden = tuple(int(h) for h in hidden)
        self.first_layer = first_layer
        self.dropout = float(dropout)
        self.l2 = float(l2)
        self.seed = seed
        self._dropout = keras.layers.Dropout(self.dropout, seed=seed)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """One weight set per feature: first-layer kernel and centres (the paper's ExU
        initialization for exu), then the hidden layers' kernels and biases."""
        n = int(input_shape[-1])
        regularizer = keras.regularizers.L2(self.l2) if self.l2 > 0 else None
        if self.first_layer == "exu":
            # The paper's ExU initialization: log-weights ~ N(4, 0.5), centres ~ N(0, 0.5).
            first_init = keras.initializers.TruncatedNormal(mean=4.0, stddev=0.5, seed=self.seed)
            centre_init = keras.initializers.TruncatedNormal(stddev=0.5, seed=self.seed)
        else:
            first_init = keras.initializers.GlorotUniform(seed=self.seed)
            centre_init = keras.initializers.Zeros()
        self.first_kernel = self.add_weight(
            shape=(n, self.hidden[0]),
            initializer=first_init,
            regularizer=regularizer,
            name="first_kernel",
        )
        self.first_bias = self.add_weight(
            shape=(n, self.hidden[0]), initializer=centre_init, name="first_bias"
        )
        self.kernels, self.biases = [], []
        sizes = list(self.hidden) + [1]
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            seed = None if self.seed is None else self.seed + i + 1
            self.kernels.append(
                self.add_weight(
                    shape=(n, fan_in, fan_out),
                    initializer=keras.initializers.GlorotUniform(seed=seed),
                    regularizer=regularizer,
                    name=f"kernel_{i}",
                )
            )
            # The last layer has no bias: one shared bias sits after the sum.
            if fan_out != 1:
                self.biases.append(
                    self.add_weight(shape=(n, fan_out), initializer="zeros", name=f"bias_{i}")
                )

    def call(self, x: Any, training: bool | None = None) -> Any:
        """Every column through its own subnetwork at once (batched einsum), dropout between layers
        in training; (batch, F) contributions."""
        x = ops.expand_dims(x, -1)  # (batch, F, 1)
        if self.first_layer == "exu":
            h = ops.clip(ops.exp(self.first_kernel) * (x - self.first_bias), 0.0, 1.0)
        else:
            h = ops.relu(x * self.first_kernel + self.first_bias)
        for i, kernel in enumerate(self.kernels):
            h = self._dropout(h, training=training)
            h = ops.einsum("bfi,fio->bfo", h, kernel)
            if i < len(self.biases):
                h = ops.relu(h + self.biases[i])
        return ops.squeeze(h, -1)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "hidden": list(self.hidden),
            "first_layer": self.first_layer,
            "dropout": self.dropout,
            "l2": self.l2,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="nam")
class OutputPenalty(keras.layers.Layer):
    """Identity that adds weight * mean(f_i(x)^2): prefers small, simple contributions."""

    def __init__(self, weight: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, contributions: Any) -> Any:
        """Returns the contributions unchanged and adds the penalty (in float32) to the model's
        losses."""
        if self.weight > 0:
            # In float32: Keras sums the added losses with the (float32) main loss, and
            # under a mixed policy the contributions are bfloat16 or float16.
            values = ops.cast(contributions, "float32")
            self.add_loss(self.weight * ops.mean(ops.square(values)))
        return contributions

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weight": self.weight}


@keras.saving.register_keras_serializable(package="nam")
class AdditiveLogit(keras.layers.Layer):
    """(batch, F) -> (batch, 1): the sum of the contributions plus one learned bias."""

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """The one scalar bias."""
        self.bias = self.add_weight(shape=(), initializer="zeros", name="bias")

    def call(self, contributions: Any) -> Any:
        """The logit: the sum of the contributions plus the bias."""
        return ops.sum(contributions, axis=-1, keepdims=True) + self.bias


def build_nam(
    n_features: int,
    hidden: Sequence[int] = (32, 16),
    first_layer: str = "relu",
    dropout: float = 0.1,
    feature_dropout: float = 0.05,
    output_penalty: float = 1e-3,
    l2: float = 1e-5,
    learning_rate: float = 3e-3,
    seed: int | None = None,
) -> keras.Model:
    """A NAM for `n_features` inputs: one subnetwork per feature (`hidden` units, `first_layer`
    relu or exu), the paper's output penalty and feature dropout, an additive logit and a
    sigmoid output; compiled with Adam at `learning_rate` and binary cross-entropy."""
    inputs = keras.Input(shape=(n_features,), name="features")
    contributions = FeatureNets(hidden, first_layer, dropout, l2, seed, name=CONTRIBUTIONS_LAYER)(
        inputs
    )
    penalized = OutputPenalty(output_penalty, name="output_penalty")(contributions)
    # Feature dropout: drop whole f_i terms so no single feature carries the prediction.
    dropped = keras.layers.Dropout(feature_dropout, seed=seed, name="feature_dropout")(penalized)
    # The logit and probability in float32 under a mixed policy, as the CNN's head.
    logit = AdditiveLogit(name=LOGIT_LAYER, dtype="float32")(dropped)
    probability = keras.layers.Activation("sigmoid", name="probability", dtype="float32")(logit)
    model = keras.Model(inputs, probability, name="nam")
    compile_binary(model, learning_rate)
    return model


def contributions_model(model: keras.Model) -> keras.Model:
    """The NAM up to its per-feature contributions f_i(x_i), shape (batch, F)."""
    return keras.Model(model.inputs[0], model.get_layer(CONTRIBUTIONS_LAYER).output)


def bias(model: keras.Model) -> float:
    """The NAM's bias: the logit when every feature's contribution is zero."""
    return float(keras.ops.convert_to_numpy(model.get_layer(LOGIT_LAYER).bias))


def contributions(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """f_i(x_i) for every row and column, shape (rows, F)."""
    # A direct call: predict() would trace a new function for every sub-model.
    return keras.ops.convert_to_numpy(
        contributions_model(model)(np.asarray(x, dtype=np.float32), training=False)
    )


def shape_function(model: keras.Model, feature: int, values: np.ndarray) -> np.ndarray:
    """f_feature evaluated at `values` (the other columns are irrelevant to it; set to 0)."""
    values = np.asarray(values, dtype=np.float32)
    grid = np.zeros((len(values), model.inputs[0].shape[-1]), dtype=np.float32)
    grid[:, feature] = values
    return contributions(model, grid)[:, feature]
