"""Grad-CAM and Grad-CAM++: shapes, range, that the heatmap finds what drives the score,
nested backbones, and Grad-CAM++'s weights against a direct numpy evaluation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.explain.gradcam import (
    feature_and_prediction_model,
    grad_cam,
    grad_cam_plus_plus,
    last_conv_layer,
)
from models.cnn import build_cnn
from tests.support.blob_models import blob_model

METHODS = {"gradcam": grad_cam, "gradcam_plus_plus": grad_cam_plus_plus}
each_method = pytest.mark.parametrize("method", METHODS.values(), ids=METHODS.keys())


@pytest.fixture(scope="module")
def nested_transfer() -> tuple[keras.Model, np.ndarray]:
    """A VGG16 transfer model (random weights: the backbone is one nested layer) and two
    raw-pixel images for it."""
    from models.transfer import build_transfer

    keras.utils.set_random_seed(0)
    images = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 1)).astype("float32")
    return build_transfer("vgg16", 64), images


@each_method
def test_heatmap_peaks_on_the_bright_blob(method):
    images = np.zeros((3, 32, 32, 1), dtype="float32")
    centres = [(5, 5), (16, 24), (27, 10)]
    for image, (r, c) in zip(images, centres):
        image[r - 2 : r + 3, c - 2 : c + 3] = 1.0
    heatmaps = method(blob_model(), images)
    assert heatmaps.shape == (3, 32, 32)
    assert heatmaps.min() >= 0.0 and np.allclose(heatmaps.max(axis=(1, 2)), 1.0)
    for heatmap, centre in zip(heatmaps, centres):
        peak = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        assert abs(peak[0] - centre[0]) <= 2 and abs(peak[1] - centre[1]) <= 2


@each_method
def test_default_cnn_layer_choice_and_softmax_head(method):
    model = build_cnn(32, 1, num_classes=3)
    assert last_conv_layer(model).name == "block5_relu1"
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 1)).astype("float32")
    heatmaps = method(model, images, layer_name="block4_relu1", class_index=2)
    assert heatmaps.shape == (2, 32, 32) and np.isfinite(heatmaps).all()


def test_grad_cam_plus_plus_contract_and_batching():
    """(n, h, w) float in [0, 1] at input resolution, each map peaking at 1 (or all zero),
    and an image's map does not depend on the rest of its batch."""
    keras.utils.set_random_seed(0)
    model = build_cnn(32, filters=(4, 8, 8))
    images = np.random.default_rng(2).uniform(0, 255, (3, 32, 32, 1)).astype("float32")
    heatmaps = grad_cam_plus_plus(model, images)
    assert heatmaps.shape == (3, 32, 32) and heatmaps.dtype == np.float32
    assert np.isfinite(heatmaps).all() and heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0
    peaks = heatmaps.max(axis=(1, 2))
    assert np.all(np.isclose(peaks, 1.0) | (peaks == 0.0)) and peaks.any()
    alone = grad_cam_plus_plus(model, images[1:2])
    np.testing.assert_allclose(alone[0], heatmaps[1], atol=1e-5)


@each_method
def test_transfer_model_with_nested_backbone(method, nested_transfer):
    model, images = nested_transfer
    heatmaps = method(model, images)
    assert heatmaps.shape == (2, 64, 64) and np.isfinite(heatmaps).all()
    assert np.allclose(heatmaps.max(axis=(1, 2)), 1.0) or heatmaps.max() == 0.0


def test_split_forward_pass_predicts_like_the_model(nested_transfer):
    model, images = nested_transfer
    layer = last_conv_layer(model)
    expected = model.predict(images, verbose=0)
    _, predictions = feature_and_prediction_model(model, layer)(images)
    np.testing.assert_allclose(np.asarray(predictions), expected, rtol=1e-5, atol=1e-6)
    # The logit variant, through the head's own kernel and bias, is the same prediction.
    _, logits = feature_and_prediction_model(model, layer, sigmoid_logit=True)(images)
    np.testing.assert_allclose(tf.sigmoid(logits).numpy(), expected, rtol=1e-5, atol=1e-6)


def reference_grad_cam_plus_plus(maps: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """The closed form evaluated directly, one image and channel at a time: (n, h, w)."""
    cams = []
    for a, g in zip(maps.astype("float64"), gradients.astype("float64")):
        cam = np.zeros(a.shape[:2])
        for k in range(a.shape[-1]):
            ak, gk = a[..., k], g[..., k]
            denominator = 2 * gk**2 + ak.sum() * gk**3
            alpha = np.divide(gk**2, denominator, out=np.zeros_like(gk), where=denominator != 0)
            cam += np.sum(alpha * np.maximum(gk, 0)) * ak
        cam = np.maximum(cam, 0)
        cams.append(cam / cam.max() if cam.max() > 0 else cam)
    return np.stack(cams)


def test_grad_cam_plus_plus_matches_the_formula_on_a_tiny_model():
    """A random conv net whose gradients at the explained layer vary in space and sign,
    so the alpha weighting matters; the logit is a layer of its own, so the reference
    gradients do not go through the sigmoid inversion the implementation uses."""
    keras.utils.set_random_seed(3)
    layers = keras.layers
    inputs = keras.Input((8, 8, 1))
    h = layers.Conv2D(3, 3, padding="same", activation="relu")(inputs)
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="target")(h)
    h = layers.Conv2D(3, 3, padding="same", activation="relu")(h)
    h = layers.GlobalAveragePooling2D()(h)
    logit = layers.Dense(1, name="logit")(h)
    model = keras.Model(inputs, layers.Activation("sigmoid")(logit))
    images = np.random.default_rng(4).uniform(0, 1, (3, 8, 8, 1)).astype("float32")

    probe = keras.Model(inputs, [model.get_layer("target").output, logit])
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        maps, logits = probe(x)
    gradients = tape.gradient(logits, maps).numpy()
    assert (gradients > 0).any() and (gradients < 0).any()
    expected = reference_grad_cam_plus_plus(maps.numpy(), gradients)

    heatmaps = grad_cam_plus_plus(model, images, layer_name="target")
    np.testing.assert_allclose(heatmaps, expected, atol=2e-5)
    # The check has teeth: Grad-CAM on the same maps is measurably different.
    assert np.abs(grad_cam(model, images, layer_name="target") - expected).max() > 0.05


def two_blob_model(gradient: float, size: int = 16) -> keras.Model:
    """The paper's multiple-instance setting made exact: channel k of the explained layer
    ("features", the identity) holds instance k, a detector (ReLU of A - 0.5) fires on
    it, and the logit sums the detectors, so dS/dA = `gradient` on every instance pixel
    and 0 elsewhere. The bias centres the logit so the sigmoid does not saturate."""
    layers = keras.layers
    identity = keras.initializers.Constant(np.eye(2).reshape(1, 1, 2, 2))
    inputs = keras.Input((size, size, 2))
    a = layers.Conv2D(2, 1, use_bias=False, kernel_initializer=identity, name="features")(inputs)
    fired = layers.Conv2D(
        2,
        1,
        activation="relu",
        kernel_initializer=identity,
        bias_initializer=keras.initializers.Constant(-0.5),
    )(a)
    pooled = layers.GlobalAveragePooling2D()(fired)  # the mean: dS/dA = weight / size^2
    weight = gradient * size * size
    outputs = layers.Dense(
        1,
        activation="sigmoid",
        kernel_initializer=keras.initializers.Constant(weight),
        bias_initializer=keras.initializers.Constant(-weight * 0.5 * 68 / size**2),
    )(pooled)
    return keras.Model(inputs, outputs)


def test_grad_cam_plus_plus_covers_a_small_instance_as_well_as_a_large_one():
    """An 8x8 and a 2x2 instance (64 and 4 pixels of value 1), each in its own channel.
    With g = c on an instance, alpha = 1 / (2 + n c) and the channel weight is
    n c / (2 + n c): close to 1 for both when c is large. Grad-CAM's weight is the mean
    gradient, n c / 256, so the small instance gets 4/64 of the large one's heat."""
    c = 10.0
    image = np.zeros((1, 16, 16, 2), dtype="float32")
    image[0, 2:10, 2:10, 0] = 1.0
    image[0, 12:14, 12:14, 1] = 1.0
    model = two_blob_model(c)
    plus_plus = grad_cam_plus_plus(model, image, layer_name="features")[0]
    plain = grad_cam(model, image, layer_name="features")[0]
    weight = {n: n * c / (2 + n * c) for n in (64, 4)}
    assert plus_plus[5, 5] == pytest.approx(1.0)
    assert plus_plus[12, 12] == pytest.approx(weight[4] / weight[64], rel=1e-4)  # 0.955
    assert plain[12, 12] == pytest.approx(4 / 64, rel=1e-4)
    assert plus_plus[0, 0] == 0.0 and plus_plus[11, 5] == 0.0  # nothing off the instances


@each_method
def test_saturated_sigmoid_still_gets_a_map(method):
    """A confident model's probability is exactly 1.0 in float32; the map comes from the
    head's logit, so the most confident cases are not left blank."""
    model = blob_model()
    kernel, _ = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel, np.array([60.0], "float32")])
    images = np.zeros((1, 32, 32, 1), dtype="float32")
    images[0, 14:19, 8:13] = 1.0
    assert model.predict(images, verbose=0)[0, 0] == 1.0  # saturated
    heatmap = method(model, images)[0]
    assert heatmap.max() == pytest.approx(1.0)
    peak = np.unravel_index(np.argmax(heatmap), heatmap.shape)
    assert abs(peak[0] - 16) <= 2 and abs(peak[1] - 10) <= 2
