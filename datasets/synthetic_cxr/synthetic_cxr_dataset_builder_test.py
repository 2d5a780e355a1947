"""Tests for the synthetic_cxr builder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import tensorflow_datasets as tfds

import datasets.synthetic_cxr  # noqa: F401  (registers the builder, as users do)
from datasets.synthetic_cxr import synthetic_cxr_dataset_builder as scxr


class SyntheticCxrTest(tfds.testing.DatasetBuilderTestCase):
    """Builds the full dataset (900 phantoms) and checks registration, specs and counts."""

    DATASET_CLASS = scxr.Builder
    SPLITS = {"train": 600, "validation": 150, "test": 150}
    # Nothing is downloaded, but the test case insists on an example folder to mock
    # downloads into: this package's folder serves.
    EXAMPLE_DIR = Path(__file__).resolve().parent


def test_builder_is_registered_by_importing_the_package(tmp_path: Path) -> None:
    builder = tfds.builder("synthetic_cxr", data_dir=tmp_path)
    assert isinstance(builder, scxr.Builder)
    assert builder.info.features["label"].names == ["NORMAL", "PNEUMONIA"]


@pytest.mark.parametrize("split,size", [("train", 600), ("validation", 150), ("test", 150)])
def test_specs_have_exact_class_counts(split: str, size: int) -> None:
    specs = scxr.example_specs(split, scxr.SPLIT_SIZES[split])
    assert len(specs) == size
    assert Counter(spec.label for spec in specs) == {"NORMAL": 0.4 * size, "PNEUMONIA": 0.6 * size}


def _all_specs() -> list[scxr.ExampleSpec]:
    return [
        spec for split, size in scxr.SPLIT_SIZES.items() for spec in scxr.example_specs(split, size)
    ]


def test_specs_are_deterministic_and_seeds_distinct() -> None:
    specs = _all_specs()
    assert specs == _all_specs()
    assert len({spec.seed for spec in specs}) == len(specs)
    # Both classes are spread over the split, not in blocks.
    train_labels = [spec.pneumonia for spec in scxr.example_specs("train", 600)]
    assert 0.4 < np.mean(train_labels[:100]) < 0.8


def test_spec_names() -> None:
    spec = scxr.example_specs("train", 600)[42]
    assert spec.patient_id == "synth-train-00042"
    assert spec.file_name == "synth-train-00042.png"
    assert spec.seed == scxr.example_seed("train", 42)
    assert scxr.example_seed("train", 42) != scxr.example_seed("test", 42)


def test_stored_examples_match_the_renderer(tmp_path: Path) -> None:
    """What comes out of TFDS is the rendered phantom, mask and label, bit for bit."""
    with mock.patch.dict(scxr.SPLIT_SIZES, {"train": 6, "validation": 2, "test": 2}):
        builder = scxr.Builder(data_dir=tmp_path)
        builder.download_and_prepare()
    specs = {spec.file_name: spec for spec in scxr.example_specs("train", 6)}
    examples = list(tfds.as_numpy(builder.as_dataset(split="train")))
    assert sorted(ex["file_name"].decode() for ex in examples) == sorted(specs)
    for example in examples:
        spec = specs[example["file_name"].decode()]
        image, mask = scxr.render(spec)
        np.testing.assert_array_equal(example["image"], image)
        np.testing.assert_array_equal(example["mask"], mask)
        assert example["label"] == int(spec.pneumonia)
        assert example["patient_id"].decode() == spec.patient_id
