"""A hand-built model whose score is known to come from a bright blob, for explainer tests."""

from __future__ import annotations

import keras


def blob_model(size: int = 32) -> keras.Model:
    """Score rises with brightness: identity 1x1 conv -> global average -> dense sigmoid
    with a positive weight (bias set so a blob moves the probability from ~0.3 to ~0.7)."""
    inputs = keras.Input((size, size, 1))
    conv = keras.layers.Conv2D(1, 1, kernel_initializer="ones", bias_initializer="zeros")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(conv)
    outputs = keras.layers.Dense(
        1,
        activation="sigmoid",
        kernel_initializer=keras.initializers.Constant(0.4),
        bias_initializer=keras.initializers.Constant(-3.0),
    )(pooled)
    return keras.Model(inputs, outputs)
