"""What every attribution method explains, and how a raw map becomes a heatmap.

The explained quantity is the model output itself: the probability of a sigmoid head,
the softmax probability of the predicted class (or `class_index`). Grad-CAM alone takes
a sigmoid head's logit, because it needs a gradient that does not vanish on confident
cases (components/explain/gradcam.py).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from scipy import ndimage


@tf.function(reduce_retracing=True)
def _outputs(model: keras.Model, inputs: tf.Tensor) -> tf.Tensor:
    return model(inputs, training=False)


def model_outputs(model: keras.Model, images: np.ndarray, max_batch: int = 128) -> np.ndarray:
    """The model's outputs (n, k) in inference mode, in chunks of `max_batch` images."""
    images = np.asarray(images, dtype="float32")
    chunks = [
        _outputs(model, tf.constant(images[i : i + max_batch]))
        for i in range(0, len(images), max_batch)
    ]
    return np.concatenate([np.asarray(c) for c in chunks]).reshape(len(images), -1)


def explained_classes(outputs: np.ndarray, class_index: int | None = None) -> np.ndarray:
    """Which output unit each image's explanation is about, (n,) int32.

    A single (sigmoid) unit: unit 0, the positive class. Several units (softmax):
    `class_index` when given, else each image's predicted class.
    """
    outputs = np.asarray(outputs).reshape(len(outputs), -1)
    if outputs.shape[1] == 1:
        if class_index not in (None, 0, 1):
            raise ValueError(f"a one-unit sigmoid head has no class {class_index}")
        return np.zeros(len(outputs), dtype="int32")
    if class_index is not None:
        if not 0 <= class_index < outputs.shape[1]:
            raise ValueError(
                f"class_index {class_index} out of range for {outputs.shape[1]} classes"
            )
        return np.full(len(outputs), class_index, dtype="int32")
    return np.argmax(outputs, axis=1).astype("int32")


def select_scores(outputs, classes) -> tf.Tensor:
    """outputs[i, classes[i]] for each row: the explained score (n,)."""
    outputs = tf.reshape(outputs, [tf.shape(outputs)[0], -1])
    return tf.gather(outputs, tf.cast(classes, tf.int32), axis=1, batch_dims=1)


def class_scores(
    model: keras.Model, images: np.ndarray, classes: np.ndarray, max_batch: int = 128
) -> np.ndarray:
    """The explained score of each image, (n,) float."""
    return np.asarray(select_scores(model_outputs(model, images, max_batch), classes))


def normalize_positive(maps: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Positive part of each map divided by its own peak: (n, h, w) float32 in [0, 1].

    A map with no positive evidence is all zeros (not NaN).
    """
    maps = np.nan_to_num(np.maximum(np.asarray(maps, dtype="float64"), 0.0))
    peak = maps.max(axis=tuple(range(1, maps.ndim)), keepdims=True)
    return (maps / np.maximum(peak, eps)).astype("float32")


def smooth(maps: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of (n, h, w) maps over h and w only, in one call."""
    if not sigma:
        return np.asarray(maps)
    return ndimage.gaussian_filter(
        np.asarray(maps, dtype="float64"), sigma=(0, sigma, sigma), mode="nearest"
    )


def finding_model(model: keras.Model, index: int) -> keras.Model:
    """A multi-label model (one sigmoid per finding) seen as a binary one for finding
    `index`: the same layers up to the head, then a one-unit sigmoid Dense with that
    finding's weights. Every method then explains that finding exactly as it explains
    a binary model (Grad-CAM through its logit, LIME's two columns, ...)."""
    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense) or head.activation is not keras.activations.sigmoid:
        raise ValueError(f"{model.name} does not end in a sigmoid Dense layer")
    kernel, bias = head.get_weights()
    unit = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="prediction")
    outputs = unit(head.input)
    unit.set_weights([kernel[:, index : index + 1], bias[index : index + 1]])
    return keras.Model(model.inputs, outputs, name=f"{model.name}_finding{index}")
