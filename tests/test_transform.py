"""Transform: decoding every image kind to one grayscale channel, saved splits, input_fn."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from benchmarks.small_folders import make_drawn_folder
from components.images import decode_file
from components.pneumonia.example_gen import run as example_gen
from components.pneumonia.transform import run as transform
from components.saved_splits import input_fn, split_images, split_labels


def save(path, array, **kwargs) -> str:
    Image.fromarray(array).save(path, **kwargs)
    return str(path)


@pytest.mark.parametrize(
    "kind", ["gray_jpeg", "rgb_jpeg", "progressive_jpeg", "png16", "rgba_png", "palette_png", "bmp"]
)
def test_decode_any_image_kind_to_one_channel(tmp_path, kind):
    gradient = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))
    if kind == "gray_jpeg":
        path = save(tmp_path / "a.jpeg", gradient)
    elif kind == "rgb_jpeg":
        path = save(tmp_path / "a.jpeg", np.stack([gradient] * 3, -1))
    elif kind == "progressive_jpeg":
        path = save(tmp_path / "a.jpeg", gradient, progressive=True)
    elif kind == "png16":
        path = str(tmp_path / "a.png")
        Image.fromarray(gradient.astype(np.uint16) * 257).save(path)
    elif kind == "rgba_png":
        path = save(tmp_path / "a.png", np.dstack([gradient] * 3 + [np.full_like(gradient, 128)]))
    elif kind == "palette_png":
        path = str(tmp_path / "a.png")
        Image.fromarray(gradient).convert("P").save(path)
    else:
        path = save(tmp_path / "a.bmp", gradient)
    image = decode_file(tf.constant(path), 32).numpy()
    assert image.shape == (32, 32, 1) and image.dtype == np.uint8
    # Same left-to-right ramp whatever the encoding: dark on the left, bright on the right.
    assert image[:, :4].mean() < 40 and image[:, -4:].mean() > 215


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    root = tmp_path_factory.mktemp("transform")
    data = make_drawn_folder(root / "data", 12, 2)
    (root / "example_gen").mkdir()
    (root / "transform").mkdir()
    example_gen(root / "example_gen", data_dir=str(data), seed=0)
    transform(root / "transform", examples=root / "example_gen", image_size=24)
    return root


def test_transform_saves_every_split_with_its_spec(transformed):
    spec = json.loads((transformed / "transform" / "transform.json").read_text())
    assert spec["image_size"] == 24 and spec["class_names"] == ["NORMAL", "PNEUMONIA"]
    assert sum(spec["counts"].values()) == 48
    assert spec["undecodable"] == []
    assert sum(spec["train_class_counts"]) == spec["counts"]["train"]
    labels = split_labels(transformed / "transform", "val")
    assert len(labels) == spec["counts"]["val"] and set(labels) == {0, 1}


def test_input_fn_batches_float_pixels_and_shuffles_reproducibly(transformed):
    folder = transformed / "transform"
    images, labels = next(iter(input_fn(folder, "train", batch_size=8, training=True, seed=1)))
    assert images.shape == (8, 24, 24, 1) and images.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 255.0
    again = next(iter(input_fn(folder, "train", batch_size=8, training=True, seed=1)))
    np.testing.assert_array_equal(labels.numpy(), again[1].numpy())
    evaluation = [y.numpy() for _, y in input_fn(folder, "val", batch_size=4)]
    np.testing.assert_array_equal(np.concatenate(evaluation), split_labels(folder, "val"))


def test_evaluation_batches_are_not_augmented(transformed):
    folder = transformed / "transform"
    batches = np.concatenate([x.numpy() for x, _ in input_fn(folder, "val", batch_size=4)])
    # The saved (decoded, resized, never augmented) images, pixel for pixel: a seeded
    # augmentation would give the same batches twice, but not these.
    np.testing.assert_array_equal(batches, split_images(folder, "val").astype("float32"))
    training = np.concatenate(
        [x.numpy() for x, _ in input_fn(folder, "val", batch_size=4, training=True, seed=0)]
    )
    assert not np.array_equal(np.sort(training, axis=None), np.sort(batches, axis=None))


def test_undecodable_file_is_dropped_and_reported(tmp_path):
    data = make_drawn_folder(tmp_path / "data", 12, 2)
    (tmp_path / "example_gen").mkdir()
    (tmp_path / "transform").mkdir()
    example_gen(tmp_path / "example_gen", data_dir=str(data), seed=0)
    # Passes ExampleGen's check, then breaks before Transform reads it.
    victim = sorted((data / "train" / "NORMAL").iterdir())[0]
    victim.write_bytes(b"\xff\xd8\xff garbage")
    transform(tmp_path / "transform", examples=tmp_path / "example_gen", image_size=16)
    spec = json.loads((tmp_path / "transform" / "transform.json").read_text())
    assert spec["undecodable"] == [str(victim.resolve())]
    assert sum(spec["counts"].values()) == 47


def test_random_affine_is_identity_at_zero_and_warps_otherwise():
    from components.augmentation import augmentation_layers

    images = np.zeros((4, 32, 32, 1), dtype="float32")
    images[:, 12:20, 12:20] = 255.0
    still = augmentation_layers(0.0, 0.0, 0.0, 0.0, False, seed=0)(images, training=True)
    np.testing.assert_allclose(np.asarray(still), images, atol=1e-3)
    moved = np.asarray(
        augmentation_layers(0.05, 0.2, 0.2, 0.0, False, seed=0)(images, training=True)
    )
    assert moved.shape == images.shape
    assert np.abs(moved - images).max() > 100  # the square moved or changed size
    again = np.asarray(
        augmentation_layers(0.05, 0.2, 0.2, 0.0, False, seed=0)(images, training=True)
    )
    np.testing.assert_allclose(moved, again)  # seeded
