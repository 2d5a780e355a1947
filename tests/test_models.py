"""Model builders: every model trains with the focal loss, the CNN-LSTM has its published
size, transfer models preprocess like keras.applications, reload in safe mode, and
fine-tune the right layers.

Train steps run eagerly: tracing a DenseNet121 train step took about two minutes on 2 CPU cores,
one eager step a few seconds.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest

from models.cnn_lstm import build_cnn_lstm
from models.losses import make_loss
from models.transfer import APPLICATIONS, backbone, build_transfer, fine_tune_layers

SIZES = {"cnn_lstm": 128, "densenet121": 32, "vgg16": 32, "xception": 75, "efficientnetb0": 32}
PREPROCESS_INPUT = {
    "densenet121": keras.applications.densenet.preprocess_input,
    "vgg16": keras.applications.vgg16.preprocess_input,
    "xception": keras.applications.xception.preprocess_input,
    "efficientnetb0": keras.applications.efficientnet.preprocess_input,
}


@functools.cache
def built(name: str) -> keras.Model:
    """One binary, randomly initialized model per name, shared by the tests."""
    if name == "cnn_lstm":
        return build_cnn_lstm(SIZES[name])
    return build_transfer(name, SIZES[name], weights="none")


def images(n: int, size: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, channels)).astype("float32")


def predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Inference-mode outputs, eagerly (model.predict would trace a graph first)."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def backbone_input(model: keras.Model) -> keras.Model:
    """The outer model from its input to the tensor it feeds the nested backbone."""
    before = model.layers[model.layers.index(backbone(model)) - 1]
    return keras.Model(model.input, before.output)


@pytest.mark.parametrize("name", list(SIZES))
def test_every_model_trains_one_step_with_focal_loss(name):
    model = built(name)
    assert model.input_shape == (None, SIZES[name], SIZES[name], 1)
    assert model.output_shape == (None, 1)
    first = model.trainable_weights[0]  # the first conv: gradients reach the bottom
    before = keras.ops.convert_to_numpy(first).copy()
    model.compile(keras.optimizers.SGD(0.1), loss=make_loss(2), run_eagerly=True)
    loss = model.train_on_batch(images(4, SIZES[name]), np.array([0, 1, 0, 1], "float32"))
    assert np.isfinite(loss)
    assert not np.allclose(keras.ops.convert_to_numpy(first), before)


def test_cnn_lstm_has_the_published_size():
    model = built("cnn_lstm")
    assert model.count_params() == 2_720_129
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == 1_984
    assert model.get_layer("rows_to_sequence").output.shape == (None, 16, 2048)


def test_cnn_lstm_sequence_follows_the_feature_map_and_three_classes():
    model = build_cnn_lstm(72, num_classes=3)
    assert model.get_layer("rows_to_sequence").output.shape == (None, 9, 9 * 128)
    model.compile(keras.optimizers.SGD(0.1), loss=make_loss(3), run_eagerly=True)
    labels = keras.utils.to_categorical([0, 1, 2, 1], 3)
    assert np.isfinite(model.train_on_batch(images(4, 72), labels))
    probabilities = predict(model, images(5, 72))
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_transfer_three_class_output():
    model = build_transfer("vgg16", 32, num_classes=3)
    probabilities = predict(model, images(2, 32))
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", list(APPLICATIONS))
def test_backbone_is_one_nested_layer_fed_like_preprocess_input(name):
    model = built(name)
    nested = backbone(model)
    assert nested.name == name and nested in model.layers
    assert not any(type(layer).__name__ == "Lambda" for layer in model.layers)
    x = images(3, SIZES[name])
    expected = PREPROCESS_INPUT[name](np.repeat(x, 3, axis=-1))
    fed = keras.ops.convert_to_numpy(backbone_input(model)(x))
    np.testing.assert_allclose(fed, expected, rtol=1e-5, atol=1e-4)


def test_rgb_input_is_flipped_to_bgr_for_vgg16():
    model = build_transfer("vgg16", 32, channels=3)
    x = images(2, 32, channels=3)
    x[..., 0] = 10.0  # make the channels distinguishable
    fed = keras.ops.convert_to_numpy(backbone_input(model)(x))
    np.testing.assert_allclose(
        fed, keras.applications.vgg16.preprocess_input(x.copy()), rtol=1e-5, atol=1e-4
    )
    assert model.get_layer("rgb_to_bgr").trainable_weights == []


@pytest.mark.parametrize("name", ["vgg16", "xception"])  # Concatenate, Normalization, Rescaling
def test_saved_transfer_model_reloads_in_safe_mode(tmp_path, name):
    model = built(name)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert backbone(reloaded).name == name
    x = images(3, SIZES[name], seed=1)
    np.testing.assert_allclose(predict(reloaded, x), predict(model, x), rtol=1e-5, atol=1e-6)


def test_weights_file_loads_frozen_then_fine_tune_layers(tmp_path):
    source = built("efficientnetb0")
    path = tmp_path / "backbone.weights.h5"
    backbone(source).save_weights(path)
    model = build_transfer("efficientnetb0", 32, weights=str(path))
    base = backbone(model)
    for loaded, saved in zip(base.weights, backbone(source).weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(loaded), keras.ops.convert_to_numpy(saved)
        )
    head = {id(w) for w in model.get_layer("prediction").trainable_weights}
    assert base.trainable_weights == [] and head <= {id(w) for w in model.trainable_weights}

    fine_tune_layers(model, 10)
    non_bn = [
        layer
        for layer in base.layers
        if not isinstance(layer, (keras.layers.InputLayer, keras.layers.BatchNormalization))
    ]
    trainable = [
        layer
        for layer in base.layers
        if layer.trainable and not isinstance(layer, keras.layers.InputLayer)
    ]
    assert trainable == non_bn[-10:]
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in trainable)
    assert base.trainable_weights and model.get_layer("prediction").trainable

    # Phase 2 training leaves the frozen batch norms' ImageNet statistics alone.
    top_bn = base.get_layer("top_bn")
    moving = keras.ops.convert_to_numpy(top_bn.moving_mean).copy()
    model.compile(keras.optimizers.SGD(0.1), loss=make_loss(2), run_eagerly=True)
    model.train_on_batch(images(4, 32), np.array([0, 1, 0, 1], "float32"))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(top_bn.moving_mean), moving)

    fine_tune_layers(model, 0)
    assert base.trainable_weights == [] and not any(layer.trainable for layer in base.layers)


def test_size_and_name_errors():
    with pytest.raises(ValueError, match="xception needs images of at least 71x71"):
        build_transfer("xception", 64)
    with pytest.raises(ValueError, match="unknown transfer model"):
        build_transfer("resnet50", 64)


@pytest.mark.parametrize("name", ["cnn", "cnn_lstm"])
def test_min_image_size_is_the_smallest_our_cnns_build_at(name):
    """pipelines.pneumonia refuses a smaller --image_size before any step with it; the
    backbones' minimums are keras.applications' own (build_transfer checks them too)."""
    from models import build_model, min_image_size

    size = min_image_size(name)
    assert build_model(name, size).output_shape == (None, 1)
    with pytest.raises(ValueError):
        build_model(name, size - 1)
