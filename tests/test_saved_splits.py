"""Readers of the Transform's saved splits (components/saved_splits.py)."""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from components.saved_splits import class_balanced_sample


def saved_split_sorted_by_label(folder, counts=(30, 50)):
    """A saved split laid out as ExampleGen and the Transform leave it: label-sorted."""
    labels = np.repeat(np.arange(len(counts)), counts).astype(np.int32)
    images = (np.arange(len(labels)) % 256).astype(np.uint8)[:, None, None, None] * np.ones(
        (1, 8, 8, 1), np.uint8
    )
    ds = tf.data.Dataset.from_tensor_slices((images, labels, np.arange(len(labels))))
    ds.save(os.fspath(folder / "val"))
    spec = {"counts": {"val": len(labels)}, "class_names": ["NORMAL", "PNEUMONIA"]}
    (folder / "transform.json").write_text(json.dumps(spec))
    return images, labels


def test_per_epoch_heatmap_images_hold_every_class_and_are_seeded(tmp_path):
    images, labels = saved_split_sorted_by_label(tmp_path)
    chosen, chosen_labels = class_balanced_sample(tmp_path, "val", 4, seed=1)
    assert chosen_labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    # each picked image is the one stored with that label
    for image, label in zip(chosen, chosen_labels):
        position = int(image[0, 0, 0])
        assert labels[position] == label
    again, _ = class_balanced_sample(tmp_path, "val", 4, seed=1)
    other, _ = class_balanced_sample(tmp_path, "val", 4, seed=2)
    np.testing.assert_array_equal(chosen, again)
    assert not np.array_equal(chosen, other)
    # the first 8 of the split, the old choice, would all be NORMAL
    assert set(labels[:8]) == {0}
