"""A small multilayer perceptron for tabular features, ending in a named logit.

The logit layer is named so explainers (SHAP) can work in log-odds, where feature
attributions add up, rather than in probabilities, where they do not.
"""

from __future__ import annotations

from typing import Sequence

import keras

LOGIT_LAYER = "logit"


def build_mlp(
    n_features: int,
    hidden: Sequence[int] = (32, 16),
    dropout: float = 0.2,
    l2: float = 1e-4,
    learning_rate: float = 1e-3,
) -> keras.Model:
    """Dense(ReLU) blocks with dropout and L2, a linear logit, then a sigmoid."""
    inputs = keras.Input(shape=(n_features,), name="features")
    x = inputs
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(
            units,
            activation="relu",
            name=f"dense_{i}",
            kernel_regularizer=keras.regularizers.L2(l2),
        )(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    # The logit and probability in float32 under a mixed policy, as the CNN's head.
    logit = keras.layers.Dense(1, name=LOGIT_LAYER, dtype="float32")(x)
    probability = keras.layers.Activation("sigmoid", name="probability", dtype="float32")(logit)
    model = keras.Model(inputs, probability, name="mlp")
    compile_binary(model, learning_rate)
    return model


def compile_binary(model: keras.Model, learning_rate: float) -> None:
    """Adam + binary cross-entropy, tracking AUC (the early-stopping and tuning signal)."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")],
    )


def logit_model(model: keras.Model, list_input: bool = False) -> keras.Model:
    """The same network up to its logit (log-odds) output.

    Keras warns when a call's input structure differs from the model's: direct calls
    pass one array, shap's DeepExplainer passes a list (`list_input=True`).
    """
    inputs = model.inputs if list_input else model.inputs[0]
    return keras.Model(inputs, model.get_layer(LOGIT_LAYER).output)
