"""Keras model builders and losses; `build_model` picks one by its command-line name."""
from __future__ import annotations

import keras

MODEL_NAMES = ("cnn", "cnn_lstm", "densenet121", "vgg16", "xception", "efficientnetb0")


def build_model(name: str, image_size: int, num_classes: int = 2, weights: str = "none",
                channels: int = 1, **hyperparameters) -> keras.Model:
    """The model called `name` on `image_size`-pixel, `channels`-channel raw images."""
    if name == "cnn":
        from models.cnn import build_cnn
        return build_cnn(image_size, channels, num_classes, **hyperparameters)
    raise ValueError(f"unknown --model {name!r}; choose from {', '.join(MODEL_NAMES)}")
