"""Layers the models carry so that a saved model takes raw pixels in [0, 255]."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="pipeline")
class PerImageStandardization(keras.layers.Layer):
    """Each image to zero mean and unit variance over its own pixels.

    Exposure and processing differ between acquisitions; standardizing every image by its
    own statistics inside the model removes the global part of that difference for
    training and for any image the saved model is given later. (Keras' Normalization
    layer uses one mean and variance for the whole dataset, which does not.) The floor
    on the deviation keeps a blank image finite; the op is differentiable, so gradient
    explanations pass through it.
    """

    def call(self, images):
        """(images - mean) / max(sd, 1) per image: the floor keeps a flat image from blowing up."""
        ops = keras.ops
        mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
        deviation = ops.std(images, axis=(1, 2, 3), keepdims=True)
        return (images - mean) / ops.maximum(deviation, 1.0)
