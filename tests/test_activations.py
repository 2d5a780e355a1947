"""The intermediate-activation view: which layers end the conv blocks, that one forward
pass gives each block's true activations (nested backbones included), and the figure."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from PIL import Image

from components.explain.activations import (
    activation_view,
    conv_block_outputs,
    feature_maps,
    plot_feature_maps,
)
from models.cnn import build_cnn
from models.transfer import CAFFE_MEAN_BGR, backbone, build_transfer
from tests.support.tensorboard_events import image_tags

SIZE = 32


@pytest.fixture(scope="module")
def cnn() -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_cnn(SIZE)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (SIZE, SIZE, 1)).astype("float32")


def direct(inputs: keras.KerasTensor, layer: keras.layers.Layer, x: np.ndarray) -> np.ndarray:
    """The layer's output for one image from its own sub-model: (h, w, c)."""
    return keras.Model(inputs, layer.output)(x[np.newaxis], training=False).numpy()[0]


@pytest.mark.parametrize("convs_per_block", [1, 2])
def test_one_block_per_conv_block_ending_before_its_pooling(convs_per_block):
    model = build_cnn(SIZE, filters=(4, 8, 8, 8, 8), convs_per_block=convs_per_block)
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    names = [layer.name for layer in conv_block_outputs(model)]
    assert len(names) == len(pools) == 5
    assert names == [f"block{i}_relu{convs_per_block}" for i in range(1, 6)]


def test_block_maps_halve_and_equal_a_direct_evaluation(cnn, image):
    maps = feature_maps(cnn, image)
    assert [m.shape for _, m in maps] == [
        (32, 32, 16),
        (16, 16, 32),
        (8, 8, 64),
        (4, 4, 128),
        (2, 2, 256),
    ]
    for name, activations in maps:
        expected = direct(cnn.inputs[0], cnn.get_layer(name), image)
        np.testing.assert_allclose(activations, expected, rtol=1e-5, atol=1e-5)
    # A batch of one is accepted too; a batch of two is not one image.
    np.testing.assert_allclose(feature_maps(cnn, image[np.newaxis])[-1][1], maps[-1][1], atol=1e-6)
    with pytest.raises(ValueError, match="one image"):
        feature_maps(cnn, np.stack([image, image]))


def test_nested_backbone_blocks_are_looked_into():
    """VGG16 with random weights: its five blocks' last convs, fed the image replicated to
    three channels minus the Caffe mean pixel, exactly as the outer model feeds them."""
    keras.utils.set_random_seed(0)
    model = build_transfer("vgg16", SIZE, weights="none")
    image = np.random.default_rng(1).uniform(0, 255, (SIZE, SIZE, 1)).astype("float32")
    maps = feature_maps(model, image)
    assert [name for name, _ in maps] == [
        "block1_conv2",
        "block2_conv2",
        "block3_conv3",
        "block4_conv3",
        "block5_conv3",
    ]
    assert [m.shape[0] for _, m in maps] == [32, 16, 8, 4, 2]
    base = backbone(model)
    preprocessed = np.repeat(image, 3, axis=-1) - np.array(CAFFE_MEAN_BGR, dtype="float32")
    for name, activations in maps:
        expected = direct(base.inputs[0], base.get_layer(name), preprocessed)
        np.testing.assert_allclose(activations, expected, rtol=1e-4, atol=1e-3)


def test_blocks_before_inside_and_after_a_nested_model():
    """The split forward pass: an outer block before the nested model, one inside it and
    two after it, each equal to its own sub-model's output."""
    keras.utils.set_random_seed(0)
    layers = keras.layers
    inner_in = keras.Input((8, 8, 4))
    inner = keras.Model(
        inner_in,
        layers.MaxPooling2D()(layers.Conv2D(4, 3, padding="same", name="inside")(inner_in)),
    )
    inputs = keras.Input((16, 16, 1))
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="before")(inputs)
    h = inner(layers.MaxPooling2D()(h))
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="after1")(h)
    h = layers.Conv2D(4, 3, strides=2, padding="same", name="after2")(h)
    model = keras.Model(inputs, layers.Dense(1)(layers.GlobalAveragePooling2D()(h)))
    image = np.random.default_rng(2).uniform(0, 1, (16, 16, 1)).astype("float32")
    maps = dict(feature_maps(model, image))
    assert list(maps) == ["before", "inside", "after1", "after2"]
    for name in ("before", "after1", "after2"):
        np.testing.assert_allclose(
            maps[name], direct(inputs, model.get_layer(name), image), atol=1e-5
        )
    pooled = direct(inputs, model.layers[2], image)  # the nested model's input
    np.testing.assert_allclose(
        maps["inside"], direct(inner_in, inner.get_layer("inside"), pooled), atol=1e-5
    )


def test_plot_shows_the_most_active_channels_min_max_scaled():
    activations = np.random.default_rng(3).uniform(0, 1, (4, 4, 5))
    activations[..., 3] += 5.0  # the most active, then channel 1, then 4
    activations[..., 1] += 3.0
    activations[..., 4] += 1.0
    fig = plot_feature_maps(np.zeros((8, 8, 1)), [("block", activations)], "t", max_channels=3)
    axes = fig.axes
    assert len(axes) == 4 and "block" in axes[0].get_ylabel() and "4x4x5" in axes[0].get_ylabel()
    for ax, channel in zip(axes[1:], (3, 1, 4)):
        shown = np.asarray(ax.images[0].get_array())
        values = activations[..., channel]
        np.testing.assert_allclose(shown, (values - values.min()) / (values.max() - values.min()))


def test_activation_view_writes_png_tensorboard_image_and_summary(cnn, image, tmp_path):
    summary = activation_view(cnn, image, tmp_path / "maps.png", tmp_path / "tb", title="x")
    json.dumps(summary, allow_nan=False)
    with Image.open(tmp_path / "maps.png") as png:
        width, height = png.size
        pixels = np.asarray(png.convert("L"))
    # 5 rows of 1 image + 16 channels, ~130 px a panel at 100 dpi.
    assert width > 1500 and 500 < height < width and pixels.std() > 10
    assert "./activations/feature_maps" in image_tags(tmp_path / "tb")
    blocks = summary["blocks"]
    assert [b["layer"] for b in blocks] == [f"block{i}_relu1" for i in range(1, 6)]
    assert blocks[0]["shape"] == [32, 32, 16] and blocks[-1]["shape"] == [2, 2, 256]
    for block in blocks:  # after ReLU: non-negative, some units off
        assert block["mean_activation"] >= 0 and 0 <= block["dead_fraction"] <= 1
    maps = dict(feature_maps(cnn, image))
    assert blocks[1]["dead_fraction"] == pytest.approx(np.mean(maps["block2_relu1"] == 0))
    assert blocks[1]["mean_activation"] == pytest.approx(float(maps["block2_relu1"].mean()))
