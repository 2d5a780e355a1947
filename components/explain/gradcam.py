"""Grad-CAM (Selvaraju et al., 2017) and Grad-CAM++ (Chattopadhyay et al., 2018), batched:
one gradient call for a whole batch.

Written by hand because tf-explain's Grad-CAM works one image at a time and lacks
sigmoid-head handling (tests cross-check the two, issue 5), and tf-explain has no
Grad-CAM++ at all; both methods here share the forward pass, the class score, the
nested-backbone handling (keras.applications inside our transfer models) and the
resize-and-normalize step, and differ only in how they weight the channels.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import tensorflow as tf

ForwardPass = Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


def last_conv_layer(model: keras.Model) -> keras.layers.Layer:
    """The last layer whose output is a 4-D feature map (batch, h, w, channels).

    Pooling layers are passed over: the map just before pooling has twice the resolution.
    """
    for layer in reversed(model.layers):
        if isinstance(layer, keras.layers.InputLayer) or "Pooling" in type(layer).__name__:
            continue
        if len(layer.output.shape) == 4:
            return layer
    raise ValueError(f"model {model.name} has no layer with a 4-D output for Grad-CAM")


def model_input(model: keras.Model):
    """The model's input tensor, unwrapped when there is one: a sub-model built on the
    one-element list warns on every call that a bare tensor does not match its structure."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def sigmoid_head(model: keras.Model) -> keras.layers.Dense | None:
    """The model's last layer when it is a one-unit Dense with a sigmoid, else None."""
    head = model.layers[-1]
    if (
        isinstance(head, keras.layers.Dense)
        and head.units == 1
        and head.activation is keras.activations.sigmoid
    ):
        return head
    return None


def feature_and_prediction_model(
    model: keras.Model, layer: keras.layers.Layer, sigmoid_logit: bool = False
) -> ForwardPass:
    """A callable image batch -> (feature maps of `layer`, predictions).

    With `sigmoid_logit`, a one-unit sigmoid Dense head yields its logit instead of its
    probability, computed from the head's input with its own kernel and bias: a confident
    probability rounds to exactly 1.0 in float32 (logit above about 17), after which no
    gradient reaches the maps and Grad-CAM of the most confident cases would be blank.

    When `layer` is a nested backbone (keras.applications inside our transfer models),
    its inner layers live in another graph, so keras.Model(model.inputs, inner.output)
    fails ("not connected"). As MONAI's CAM code does for nested networks, we split the
    model in three: the layers before the backbone, the backbone re-exposed at its last
    conv map, and the head after it; one forward pass through them keeps the gradient path.
    """
    head = sigmoid_head(model) if sigmoid_logit else None
    output = head.input if head is not None else model.outputs[0]

    def finish(values: tf.Tensor) -> tf.Tensor:
        if head is None:
            return values
        return keras.ops.matmul(keras.ops.cast(values, head.kernel.dtype), head.kernel) + head.bias

    if not isinstance(layer, keras.Model):
        split = keras.Model(model_input(model), [layer.output, output])

        def forward(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            feature_maps, values = split(images, training=False)
            return feature_maps, finish(values)

        return forward
    inner = last_conv_layer(layer)
    backbone = keras.Model(model_input(layer), [inner.output, layer.outputs[0]])
    # The backbone's call in the outer graph: its input and output tensors there.
    node = layer._inbound_nodes[0]
    before = keras.Model(model_input(model), node.input_tensors[0])
    after = keras.Model(node.output_tensors[0], output)

    def forward_nested(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        feature_maps, features = backbone(before(images, training=False), training=False)
        return feature_maps, finish(after(features, training=False))

    return forward_nested


def _class_score(predictions: tf.Tensor, class_index: int | None, is_logit: bool) -> tf.Tensor:
    """(n,) scores to explain: the logit of a sigmoid head (the probability's gradient
    vanishes on confident predictions), else the softmax probability of `class_index`,
    or of the predicted class when it is None."""
    if predictions.shape[-1] == 1 and is_logit:
        return predictions[:, 0]
    if predictions.shape[-1] == 1:  # a sigmoid we cannot see behind: invert it, clipped
        p = tf.clip_by_value(predictions[:, 0], 1e-7, 1 - 1e-7)
        return tf.math.log(p) - tf.math.log1p(-p)
    chosen = (
        tf.fill([tf.shape(predictions)[0]], class_index)
        if class_index is not None
        else tf.argmax(predictions, axis=-1, output_type=tf.int32)
    )
    return tf.gather(predictions, chosen, axis=1, batch_dims=1)


def _maps_and_gradients(
    model: keras.Model, images: np.ndarray, layer_name: str | None, class_index: int | None
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The inputs, the explained layer's feature maps A and dS/dA, all in one gradient
    call for the batch; the layer is `layer_name` or the last conv layer."""
    layer = model.get_layer(layer_name) if layer_name else last_conv_layer(model)
    forward = feature_and_prediction_model(model, layer, sigmoid_logit=True)
    inputs = tf.convert_to_tensor(images, tf.float32)
    with tf.GradientTape() as tape:
        feature_maps, predictions = forward(inputs)
        score = _class_score(predictions, class_index, is_logit=sigmoid_head(model) is not None)
    return inputs, feature_maps, tape.gradient(score, feature_maps)


def _heatmaps(channel_weights: tf.Tensor, feature_maps: tf.Tensor, inputs: tf.Tensor) -> np.ndarray:
    """ReLU of the channel-weighted sum of the maps, resized to the input and scaled to a
    peak of 1 per image (all-zero maps stay zero): (n, h, w) in [0, 1]."""
    cam = tf.nn.relu(tf.reduce_sum(channel_weights * feature_maps, axis=-1, keepdims=True))
    cam = tf.image.resize(cam, tf.shape(inputs)[1:3], method="bilinear")[..., 0]
    peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
    return (cam / tf.maximum(peak, 1e-12)).numpy()


def grad_cam(
    model: keras.Model,
    images: np.ndarray,
    layer_name: str | None = None,
    class_index: int | None = None,
) -> np.ndarray:
    """Heatmaps in [0, 1] at input resolution, (n, h, w), for the positive or chosen class.

    Channel weights: the spatial mean of the gradients. Sigmoid heads are explained
    through their logit; softmax heads explain `class_index`, else the predicted class.
    """
    inputs, feature_maps, gradients = _maps_and_gradients(model, images, layer_name, class_index)
    channel_weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    return _heatmaps(channel_weights, feature_maps, inputs)


def _plus_plus_weights(feature_maps: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
    """Grad-CAM++ channel weights (n, 1, 1, k) from A and g = dS/dA, both (n, h, w, k).

    With Y = exp(S) and S piecewise linear in A, Y's second and third derivatives are
    exp(S) g^2 and exp(S) g^3 (the paper's eq. 19), so exp(S) cancels in
        alpha = g^2 / (2 g^2 + sum_ab(A) g^3),   w = sum_ij alpha * relu(g)
    (its remaining factor in w is one per image, which the peak normalization removes).
    Where g = 0, alpha is 0 rather than 0/0.
    """
    g2 = tf.square(gradients)
    g3 = g2 * gradients
    map_sums = tf.reduce_sum(feature_maps, axis=(1, 2), keepdims=True)
    denominator = 2.0 * g2 + map_sums * g3
    safe = tf.where(denominator != 0.0, denominator, tf.ones_like(denominator))
    alpha = tf.where(gradients != 0.0, g2 / safe, tf.zeros_like(g2))
    return tf.reduce_sum(alpha * tf.nn.relu(gradients), axis=(1, 2), keepdims=True)


def grad_cam_plus_plus(
    model: keras.Model,
    images: np.ndarray,
    layer_name: str | None = None,
    class_index: int | None = None,
) -> np.ndarray:
    """Grad-CAM++ heatmaps, with grad_cam's contract: (n, h, w) in [0, 1] at input
    resolution, sigmoid heads through their logit, softmax heads for `class_index` or
    the predicted class, nested backbones, the last conv layer by default.

    Each location's positive gradient is weighted by alpha (_plus_plus_weights),
    so a channel that fires on a small region counts about as much as one that fires on
    a large region: several instances of a class are covered more evenly than by
    Grad-CAM, whose mean gradient favours the larger one. The closed form assumes the
    score is piecewise linear in the maps, true of the sigmoid logit behind our
    ReLU/pooling/dense heads; a softmax probability only approximately satisfies it.
    """
    inputs, feature_maps, gradients = _maps_and_gradients(model, images, layer_name, class_index)
    return _heatmaps(_plus_plus_weights(feature_maps, gradients), feature_maps, inputs)
