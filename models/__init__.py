"""Keras model builders and losses; `build_model` picks one by its command-line name."""

from __future__ import annotations

import keras

MODEL_NAMES = ("cnn", "cnn_lstm", "densenet121", "vgg16", "xception", "efficientnetb0")


def build_model(
    name: str,
    image_size: int,
    num_classes: int = 2,
    weights: str = "none",
    channels: int = 1,
    **hyperparameters,
) -> keras.Model:
    """The model called `name` on `image_size`-pixel, `channels`-channel raw images."""
    if name == "cnn":
        from models.cnn import build_cnn

        return build_cnn(image_size, channels, num_classes, **hyperparameters)
    if name == "cnn_lstm":
        from models.cnn_lstm import build_cnn_lstm

        return build_cnn_lstm(image_size, channels, num_classes, **hyperparameters)
    if name in {"densenet121", "vgg16", "xception", "efficientnetb0"}:
        from models.transfer import build_transfer

        return build_transfer(
            name, image_size, channels, num_classes, weights=weights, **hyperparameters
        )
    raise ValueError(f"unknown --model {name!r}; choose from {', '.join(MODEL_NAMES)}")
