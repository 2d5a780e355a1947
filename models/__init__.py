"""Keras model builders and losses; `build_model` picks one by its command-line name."""

from __future__ import annotations

import keras

MODEL_NAMES = ("cnn", "cnn_lstm", "densenet121", "vgg16", "xception", "efficientnetb0")


def min_image_size(name: str) -> int:
    """The smallest image side the model `name` builds at, so an entry point can refuse a
    too small --image_size before any step runs: each 2x2 pooling of our CNNs halves the
    image (five in the CNN, also the tuner's deepest; three in the CNN-LSTM), and the
    keras.applications backbones have their own minimums (models/transfer.py)."""
    if name == "cnn":
        from models.cnn import DEFAULT_FILTERS
    elif name == "cnn_lstm":
        from models.cnn_lstm import DEFAULT_FILTERS
    else:
        from models.transfer import MIN_IMAGE_SIZE

        return MIN_IMAGE_SIZE[name]
    return 2 ** len(DEFAULT_FILTERS)


def build_model(
    name: str,
    image_size: int,
    num_classes: int = 2,
    weights: str = "none",
    channels: int = 1,
    **hyperparameters,
) -> keras.Model:
    """The model called `name` on `image_size`-pixel, `channels`-channel raw images
    (`multilabel=True` among the hyperparameters: one sigmoid per class)."""
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
