"""Grad-CAM (Selvaraju et al., 2017), batched: one gradient call for a whole batch.

Written by hand because tf-explain's version works one image at a time and lacks
sigmoid-head handling; tests cross-check the two (issue 5).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


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


def feature_and_prediction_model(model: keras.Model, layer: keras.layers.Layer):
    """A callable image batch -> (feature maps of `layer`, predictions).

    When `layer` is a nested backbone (keras.applications inside our transfer models),
    its inner layers live in another graph, so keras.Model(model.inputs, inner.output)
    fails ("not connected"). As MONAI's CAM code does for nested networks, we split the
    model in three: the layers before the backbone, the backbone re-exposed at its last
    conv map, and the head after it; one forward pass through them keeps the gradient path.
    """
    if not isinstance(layer, keras.Model):
        return keras.Model(model.inputs, [layer.output, model.outputs[0]])
    inner = last_conv_layer(layer)
    backbone = keras.Model(layer.inputs, [inner.output, layer.outputs[0]])
    # The backbone's call in the outer graph: its input and output tensors there.
    node = layer._inbound_nodes[0]
    before = keras.Model(model.inputs, node.input_tensors[0])
    after = keras.Model(node.output_tensors[0], model.outputs[0])

    def forward(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        feature_maps, features = backbone(before(images, training=False), training=False)
        return feature_maps, after(features, training=False)

    return forward


def grad_cam(model: keras.Model, images: np.ndarray, layer_name: str | None = None,
             class_index: int | None = None) -> np.ndarray:
    """Heatmaps in [0, 1] at input resolution, (n, h, w), for the positive or chosen class.

    Sigmoid heads are explained through their logit: the probability's gradient vanishes
    on confident predictions. Softmax heads explain `class_index`, else the predicted class.
    """
    layer = model.get_layer(layer_name) if layer_name else last_conv_layer(model)
    forward = feature_and_prediction_model(model, layer)
    inputs = tf.convert_to_tensor(images, tf.float32)
    with tf.GradientTape() as tape:
        feature_maps, predictions = forward(inputs)
        if predictions.shape[-1] == 1:
            p = tf.clip_by_value(predictions[:, 0], 1e-7, 1 - 1e-7)
            target = tf.math.log(p) - tf.math.log1p(-p)
        else:
            chosen = (tf.fill([tf.shape(predictions)[0]], class_index) if class_index is not None
                      else tf.argmax(predictions, axis=-1, output_type=tf.int32))
            target = tf.gather(predictions, chosen, axis=1, batch_dims=1)
    gradients = tape.gradient(target, feature_maps)
    channel_weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(channel_weights * feature_maps, axis=-1, keepdims=True))
    cam = tf.image.resize(cam, tf.shape(inputs)[1:3], method="bilinear")[..., 0]
    peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
    return (cam / tf.maximum(peak, 1e-12)).numpy()
