"""The Transform's saved splits, read back: the one reader every later step uses.

`transform/<split>/` is a tf.data snapshot of (image uint8 (h, w, 1), label, row index)
per decodable image, in examples.csv's order within the split; `transform/transform.json`
holds the image size, class names, counts and augmentation settings. `input_fn` turns a
split into batches for Keras: cache, seeded shuffle, batch, augmentation on whole
batches, prefetch. With `--adapt_to`, `transform/adapt/` holds the deployment site's
images with the label UNLABELLED (their files in `transform/adapt.csv`), and
`pseudo_labelled_input_fn` trains on train plus those of them given a pseudo-label.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from components.artifacts import read_json
from components.augmentation import augmentation_layers

AUTOTUNE = tf.data.AUTOTUNE
# The deployment site's unlabelled images (pipelines.pneumonia --adapt_to), and the label
# they are saved with: none is known.
ADAPT_SPLIT = "adapt"
UNLABELLED = -1


def _saved(transform_dir: Path, split: str) -> tf.data.Dataset:
    return tf.data.Dataset.load(os.fspath(transform_dir / split))


def load_spec(transform_dir: Path) -> dict[str, Any]:
    """The Transform's transform.json: how the splits were decoded and saved (image size, task,
    class names, counts, augmentation settings), which every reader of the splits follows."""
    return read_json(transform_dir / "transform.json")


def split_labels(transform_dir: Path, split: str) -> np.ndarray:
    """Labels of a saved split in saved order (the order `input_fn` yields unshuffled):
    (n,) class indices, or (n, findings) 0/1 rows for a multi-label task."""
    ds = _saved(transform_dir, split).map(lambda x, y, i: y)
    if ds.element_spec.shape.rank:
        return np.stack(list(ds.as_numpy_iterator())).astype(np.int32)
    return np.fromiter(ds.as_numpy_iterator(), dtype=np.int32)


def split_rows(transform_dir: Path, split: str) -> np.ndarray:
    """Row indices (within the split's rows of examples.csv) in saved order."""
    ds = _saved(transform_dir, split).map(lambda x, y, i: i)
    return np.fromiter(ds.as_numpy_iterator(), dtype=np.int64)


def input_fn(
    transform_dir: Path,
    split: str,
    batch_size: int = 32,
    training: bool = False,
    seed: int = 42,
    augment: bool = True,
    one_hot: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of (float32 images in [0, 255], labels) from a saved split.

    Training: cache the decoded uint8 images in memory, reshuffle every epoch (seeded),
    batch, then augment whole batches (vectorized) in parallel with training.
    `drop_remainder` (training on several replicas): a short last batch could leave a
    replica with no image, and batch normalization's statistics of none are NaN.
    """
    spec = load_spec(transform_dir)
    ds = _saved(transform_dir, split).map(lambda image, label, index: (image, label))
    return _batches(
        ds,
        spec,
        spec["counts"][split],
        batch_size,
        training=training,
        seed=seed,
        augment=augment,
        one_hot=one_hot,
        drop_remainder=drop_remainder,
    )


def pseudo_labelled_input_fn(
    transform_dir: Path,
    pseudo_labels: np.ndarray,
    batch_size: int,
    seed: int,
    one_hot: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Training batches of the train split together with the adapt split's images that
    have a pseudo-label: `pseudo_labels[row]` is the class given to the adapt image of
    row index `row` (adapt.csv's order), negative for those left out. Shuffled together,
    augmented as training is, so a batch mixes both sites."""
    spec = load_spec(transform_dir)
    table = tf.constant(np.asarray(pseudo_labels, dtype=np.int32))
    adapt = (
        _saved(transform_dir, ADAPT_SPLIT)
        .map(lambda image, label, index: (image, tf.gather(table, index)))
        .filter(lambda image, label: label >= 0)
    )
    train = _saved(transform_dir, "train").map(lambda image, label, index: (image, label))
    count = spec["counts"]["train"] + int(np.sum(np.asarray(pseudo_labels) >= 0))
    return _batches(
        train.concatenate(adapt),
        spec,
        count,
        batch_size,
        training=True,
        seed=seed,
        augment=True,
        one_hot=one_hot,
        drop_remainder=drop_remainder,
    )


def _batches(
    ds: tf.data.Dataset,
    spec: dict[str, Any],
    count: int,
    batch_size: int,
    *,
    training: bool,
    seed: int,
    augment: bool,
    one_hot: bool,
    drop_remainder: bool,
) -> tf.data.Dataset:
    """(uint8 image, label) pairs -> cached, (shuffled,) batched, float, (augmented) batches."""
    ds = ds.cache()
    if training:
        ds = ds.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    classes = len(spec["class_names"])

    def to_float(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        labels = tf.one_hot(labels, classes) if one_hot else tf.cast(labels, tf.float32)
        return tf.cast(images, tf.float32), labels

    ds = ds.map(to_float, num_parallel_calls=AUTOTUNE)
    if training and augment:
        layers = augmentation_layers(seed=seed, **spec["augmentation"])
        # Noise and gamma may leave [0, 255]; the models expect raw pixel values.
        ds = ds.map(
            lambda x, y: (tf.clip_by_value(layers(x, training=True), 0.0, 255.0), y),
            num_parallel_calls=AUTOTUNE,
        )
    return ds.prefetch(AUTOTUNE)


def split_images(
    transform_dir: Path, split: str, positions: Sequence[int] | None = None
) -> np.ndarray:
    """A saved split's decoded images (n, h, w, 1) uint8 in saved order, or only those at
    `positions` (in the order given), without holding the rest in memory."""
    images = _saved(transform_dir, split).map(lambda x, y, i: x).as_numpy_iterator()
    if positions is None:
        return np.stack(list(images))
    wanted = set(int(p) for p in positions)
    kept = {p: image for p, image in enumerate(images) if p in wanted}
    return np.stack([kept[int(p)] for p in positions])


def split_examples(examples_dir: Path, transform_dir: Path, split: str) -> pd.DataFrame:
    """examples.csv's rows of a saved split, in saved order (undecodable files left out)."""
    frame = pd.read_csv(examples_dir / "examples.csv", keep_default_na=False)
    rows = frame[frame["split"] == split].reset_index(drop=True)
    return rows.iloc[split_rows(transform_dir, split)].reset_index(drop=True)


def split_sample(
    transform_dir: Path, split: str, size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random sample of a saved split: (images float32, integer labels)."""
    ds = (
        _saved(transform_dir, split)
        .shuffle(load_spec(transform_dir)["counts"][split], seed=seed)
        .take(size)
    )
    images, labels = zip(*((x, y) for x, y, _ in ds.as_numpy_iterator()))
    return np.stack(images).astype("float32"), np.asarray(labels)


def class_balanced_sample(
    transform_dir: Path, split: str, per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` seeded picks of every class in a saved split: (images float32, labels),
    grouped by class. ExampleGen writes each split sorted by label, so "the first n" of
    a split would be one class only."""
    labels = split_labels(transform_dir, split)
    rng = np.random.default_rng(seed)
    positions = np.concatenate(
        [
            np.sort(rng.choice(where, size=min(per_class, len(where)), replace=False))
            for where in (np.flatnonzero(labels == c) for c in np.unique(labels))
        ]
    )
    return split_images(transform_dir, split, positions).astype("float32"), labels[positions]
