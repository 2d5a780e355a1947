"""Tests for the chest_xray_pneumonia builder."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from etils import epath
from PIL import Image

from datasets.chest_xray_pneumonia import chest_xray_pneumonia_dataset_builder as cxp

REAL_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "chest_xray"


class ChestXrayPneumoniaTest(tfds.testing.DatasetBuilderTestCase):
    """Both configs on dummy_data/ (train 3+4, test 2+2, no val/ folder).

    Every dummy pneumonia file names its pathogen, so three_class keeps them all.
    """

    DATASET_CLASS = cxp.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["binary", "three_class"]
    SPLITS = {"train": 7, "test": 4}


def _write_jpeg(path: Path, mode: str, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 30), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)


def _prepare(config: str, manual_dir: Path, data_dir: Path) -> tfds.core.DatasetBuilder:
    builder = cxp.Builder(config=config, data_dir=data_dir)
    config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    builder.download_and_prepare(download_config=config)
    return builder


def _by_file_name(builder: tfds.core.DatasetBuilder, split: str) -> dict[str, dict]:
    return {ex["file_name"].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split=split))}


@pytest.fixture()
def kaggle_archive(tmp_path: Path) -> Path:
    """A manual dir as the Kaggle zip unpacks: chest_xray/{train,val}/..., with oddities."""
    root = tmp_path / "manual" / "chest_xray"
    _write_jpeg(root / "train/NORMAL/IM-0001-0001.jpeg", "L", 0)
    (root / "train/NORMAL/IM-0002-0001.jpeg").write_bytes(b"not a jpeg")
    (root / "train/NORMAL/.DS_Store").write_bytes(b"\x00\x00")
    _write_jpeg(root / "train/PNEUMONIA/person1_bacteria_1.jpeg", "RGB", 1)
    _write_jpeg(root / "train/PNEUMONIA/person2_pneumonia_3.jpeg", "L", 2)  # names no pathogen
    _write_jpeg(root / "val/NORMAL/NORMAL2-IM-0003-0001.jpeg", "RGB", 3)
    return tmp_path / "manual"


def test_binary_keeps_pathogenless_pneumonia_and_skips_unreadable_files(
    kaggle_archive: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        builder = _prepare("binary", kaggle_archive, tmp_path / "tfds")
    assert "IM-0002-0001.jpeg" in caplog.text  # the unreadable file, reported
    assert {name: info.num_examples for name, info in builder.info.splits.items()} == {
        "train": 3,
        "validation": 1,
    }
    examples = _by_file_name(builder, "train")
    assert sorted(examples) == [
        "IM-0001-0001.jpeg",
        "person1_bacteria_1.jpeg",
        "person2_pneumonia_3.jpeg",
    ]
    unknown = examples["person2_pneumonia_3.jpeg"]
    assert unknown["label"] == 1 and unknown["pathogen"] == cxp.UNKNOWN_PATHOGEN
    rgb = examples["person1_bacteria_1.jpeg"]
    assert rgb["image"].shape == (40, 30, 1) and rgb["image"].dtype == np.uint8
    assert rgb["patient_id"].decode() == "person1" and rgb["pathogen"] == 1


def test_three_class_leaves_out_pathogenless_pneumonia(
    kaggle_archive: Path, tmp_path: Path
) -> None:
    builder = _prepare("three_class", kaggle_archive, tmp_path / "tfds")
    assert builder.info.features["label"].names == ["NORMAL", "BACTERIA", "VIRUS"]
    assert builder.info.splits["train"].num_examples == 2
    labels = {name: ex["label"] for name, ex in _by_file_name(builder, "train").items()}
    assert labels == {"IM-0001-0001.jpeg": 0, "person1_bacteria_1.jpeg": 1}


def test_find_root_explains_a_wrong_manual_dir(tmp_path: Path) -> None:
    (tmp_path / "archive.zip").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="kaggle.com"):
        cxp.find_root(epath.Path(tmp_path))


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"real data not found at {REAL_DATA}")
def test_real_kaggle_val_folder(tmp_path: Path) -> None:
    """The official val/ split (16 full-size grayscale JPEGs), linked into a manual dir."""
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "val").symlink_to(REAL_DATA / "val", target_is_directory=True)
    builder = _prepare("three_class", manual, tmp_path / "tfds")
    assert list(builder.info.splits) == ["validation"]
    examples = list(tfds.as_numpy(builder.as_dataset(split="validation")))
    assert len(examples) == 16
    names = builder.info.features["label"].names
    counts = {name: sum(names[ex["label"]] == name for ex in examples) for name in names}
    assert counts["NORMAL"] == 8 and counts["BACTERIA"] + counts["VIRUS"] == 8
    assert all(ex["image"].shape[0] > 500 and ex["image"].shape[2] == 1 for ex in examples)
