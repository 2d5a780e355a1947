"""tf-explain's training callbacks: per-epoch heatmaps in TensorBoard, and Grad-CAM agreement.

One tiny CNN is trained for two epochs on blob images with heatmap_callbacks(); the
tests read the run's event files the way TensorBoard does and compare our Grad-CAM
with tf-explain's on the trained model.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from components.explain.gradcam import grad_cam
from components.explain.training_heatmaps import (
    GRAD_CAM_TAG,
    HEATMAPS_SUBDIR,
    INTEGRATED_GRADIENTS_TAG,
    compare_with_tf_explain,
    display_pixels,
    heatmap_callbacks,
    last_conv_layer_name,
    pearson_per_image,
    tf_explain_cams,
)
from models.cnn import build_cnn
from tests.support.tensorboard_events import image_tags

SIZE = 32
EPOCHS = 2
N_HEATMAP_IMAGES = 4


def blob_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy gray squares, integer pixels in [0, 255]; odd ones (label 1) carry a bright blob."""
    rng = np.random.default_rng(seed)
    images = rng.normal(90, 25, (n, SIZE, SIZE, 1))
    labels = (np.arange(n) % 2).astype("float32")
    rows, cols = np.mgrid[:SIZE, :SIZE]
    for image, label in zip(images, labels):
        if label:
            r, c = rng.integers(6, SIZE - 6, 2)
            image[..., 0] += 120 * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / 18.0)
    return np.clip(np.rint(images), 0, 255).astype("float32"), labels


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """(model, validation images, tensorboard dir) after a 2-epoch fit with the callbacks."""
    keras.utils.set_random_seed(0)
    tensorboard_dir = tmp_path_factory.mktemp("run") / "tensorboard"
    train_x, train_y = blob_images(64, seed=0)
    val_x, val_y = blob_images(16, seed=1)
    model = build_cnn(SIZE, filters=(8, 16, 32))
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy")
    callbacks = heatmap_callbacks(
        val_x[:N_HEATMAP_IMAGES], val_y[:N_HEATMAP_IMAGES], tensorboard_dir, ig_steps=8
    )
    model.fit(
        train_x,
        train_y,
        validation_data=(val_x, val_y),
        epochs=EPOCHS,
        batch_size=16,
        callbacks=callbacks,
        verbose=0,
    )
    return model, val_x, tensorboard_dir


def image_summaries(tensorboard_dir: Path, tag: str) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Per event folder holding `tag`: (step, decoded image) of every summary written."""
    found = {}
    for folder in sorted({p.parent for p in tensorboard_dir.rglob("events.out.tfevents.*")}):
        accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0})
        accumulator.Reload()
        if tag in accumulator.Tags().get("tensors", []):
            # An image summary tensor is [width, height, png bytes...].
            found[str(folder.relative_to(tensorboard_dir))] = [
                (event.step, tf.io.decode_png(tf.make_ndarray(event.tensor_proto)[2]).numpy())
                for event in accumulator.Tensors(tag)
            ]
    return found


@pytest.mark.parametrize(
    "tag, subdir, channels",
    [
        (GRAD_CAM_TAG, "grad_cam", 3),
        (INTEGRATED_GRADIENTS_TAG, "integrated_gradients", 1),
    ],
)
def test_one_heatmap_grid_per_epoch_in_tensorboard(trained_run, tag, subdir, channels):
    _, _, tensorboard_dir = trained_run
    assert any(
        t.startswith(f"{HEATMAPS_SUBDIR}/{subdir}/") and t.endswith(f"/{tag}")
        for t in image_tags(tensorboard_dir)
    ), image_tags(tensorboard_dir)
    runs = image_summaries(tensorboard_dir, tag)
    assert len(runs) == 1 and next(iter(runs)).startswith(f"{HEATMAPS_SUBDIR}/{subdir}/")
    summaries = next(iter(runs.values()))
    assert [step for step, _ in summaries] == list(range(EPOCHS))
    for _, grid in summaries:  # 4 images on a 2 x 2 grid
        assert grid.shape == (2 * SIZE, 2 * SIZE, channels) and grid.std() > 0


def test_grad_cam_overlay_shows_the_radiograph_not_wrapped_pixels(trained_run):
    # tf-explain reads float images as [0, 1]: raw [0, 255] floats would wrap in its
    # uint8 cast. display_pixels hands it uint8, which it uses as is.
    _, val_x, _ = trained_run
    pixels = display_pixels(val_x)
    assert pixels.dtype == np.uint8 and np.array_equal(pixels, val_x)


def test_our_grad_cam_agrees_with_tf_explains(trained_run):
    model, val_x, _ = trained_run
    images = val_x[:8]
    layer = last_conv_layer_name(model)
    assert layer == "block3_relu1"
    # Plain weights: the same Grad-CAM (logit vs probability differ by a positive factor).
    assert compare_with_tf_explain(model, images, layer) >= 0.95
    assert compare_with_tf_explain(model, images, "block2_relu1") >= 0.95
    ours, theirs = grad_cam(model, images, layer), tf_explain_cams(model, images, layer)
    assert ours.shape == theirs.shape == (8, SIZE, SIZE)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    # tf-explain's default "guided" weights are another map (only measured here).
    guided = compare_with_tf_explain(model, images, layer, use_guided_grads=True)
    assert -1.0 <= guided <= 1.0


def test_pearson_per_image_edge_cases():
    a = np.random.default_rng(0).random((3, 4, 4))
    flat = np.zeros((3, 4, 4))
    np.testing.assert_allclose(pearson_per_image(a, 2 * a + 1), 1.0)
    np.testing.assert_allclose(pearson_per_image(a, -a), -1.0)
    assert list(pearson_per_image(flat, flat)) == [1.0] * 3
    assert list(pearson_per_image(a, flat)) == [0.0] * 3


def test_nested_backbone_skips_grad_cam_but_logs_integrated_gradients(tmp_path):
    # tf-explain cannot reach a keras.applications backbone nested in models/transfer.py.
    from models.transfer import build_transfer

    keras.utils.set_random_seed(0)
    model = build_transfer("vgg16", SIZE)
    model.compile(keras.optimizers.Adam(1e-4), "binary_crossentropy")
    images, labels = blob_images(8, seed=2)
    grad_cam_callback, ig_callback = heatmap_callbacks(
        images, labels, tmp_path, ig_steps=4, max_images=2
    )
    model.fit(
        images,
        labels,
        epochs=1,
        batch_size=8,
        verbose=0,
        callbacks=[grad_cam_callback, ig_callback],
    )
    assert grad_cam_callback.skipped and grad_cam_callback.layer_name == "vgg16"
    assert image_summaries(tmp_path, GRAD_CAM_TAG) == {}
    (summaries,) = image_summaries(tmp_path, INTEGRATED_GRADIENTS_TAG).values()
    assert [step for step, _ in summaries] == [0]
