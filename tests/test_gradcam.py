"""Grad-CAM: shapes, range, and that the heatmap finds what drives the score."""
from __future__ import annotations

import keras
import numpy as np

from components.gradcam import grad_cam, last_conv_layer
from models.cnn import build_cnn


def blob_model() -> keras.Model:
    """Score rises with brightness: identity 1x1 conv -> global average -> dense."""
    inputs = keras.Input((32, 32, 1))
    conv = keras.layers.Conv2D(1, 1, kernel_initializer="ones", bias_initializer="zeros",
                               name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(conv)
    outputs = keras.layers.Dense(1, activation="sigmoid", kernel_initializer="ones")(pooled)
    return keras.Model(inputs, outputs)


def test_heatmap_peaks_on_the_bright_blob():
    images = np.zeros((3, 32, 32, 1), dtype="float32")
    centres = [(5, 5), (16, 24), (27, 10)]
    for image, (r, c) in zip(images, centres):
        image[r - 2:r + 3, c - 2:c + 3] = 1.0
    heatmaps = grad_cam(blob_model(), images)
    assert heatmaps.shape == (3, 32, 32)
    assert heatmaps.min() >= 0.0 and np.allclose(heatmaps.max(axis=(1, 2)), 1.0)
    for heatmap, centre in zip(heatmaps, centres):
        peak = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        assert abs(peak[0] - centre[0]) <= 2 and abs(peak[1] - centre[1]) <= 2


def test_default_cnn_layer_choice_and_softmax_head():
    model = build_cnn(32, 1, num_classes=3)
    assert last_conv_layer(model).name == "block5_relu1"
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 1)).astype("float32")
    heatmaps = grad_cam(model, images, layer_name="block4_relu1", class_index=2)
    assert heatmaps.shape == (2, 32, 32) and np.isfinite(heatmaps).all()


def test_transfer_model_with_nested_backbone():
    from models.transfer import build_transfer

    model = build_transfer("vgg16", 64)
    images = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 1)).astype("float32")
    heatmaps = grad_cam(model, images)
    assert heatmaps.shape == (2, 64, 64) and np.isfinite(heatmaps).all()
    assert np.allclose(heatmaps.max(axis=(1, 2)), 1.0) or heatmaps.max() == 0.0
    # The split forward pass predicts what the model itself predicts.
    from components.gradcam import feature_and_prediction_model, last_conv_layer

    _, predictions = feature_and_prediction_model(model, last_conv_layer(model))(images)
    np.testing.assert_allclose(predictions.numpy(), model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)
