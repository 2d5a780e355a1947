"""Leakage by image content: near-duplicate radiographs across splits (components/
near_duplicates.py and ExampleGen's use of it), on planted copies and on real radiographs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageEnhance
from scipy.fft import dctn

from benchmarks.small_folders import make_drawn_folder
from components import near_duplicates as phash
from components.pneumonia.example_gen import run as example_gen
from components.reporting.model_card import build_model_card, markdown
from datasets.synthetic_cxr.phantom import make_phantom


def save_jpeg(image: Image.Image, path: Path, quality: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=quality)
    return path


def planted_copies(original: Image.Image, folder: Path) -> dict[str, Path]:
    """What a re-export does to a radiograph: resized 224 -> 200 px and saved at JPEG
    quality 80; brightened by 10% (as PNG); cropped by 3% a side."""
    side = original.size[0]
    margin = round(0.03 * side)
    folder.mkdir(parents=True, exist_ok=True)
    brightened = ImageEnhance.Brightness(original).enhance(1.1)
    brightened.save(folder / "IM-0901-0001.png")
    return {
        "resized": save_jpeg(
            original.resize((200, 200), Image.Resampling.LANCZOS),
            folder / "IM-0900-0001.jpeg",
            80,
        ),
        "brightened": folder / "IM-0901-0001.png",
        "cropped": save_jpeg(
            original.crop((margin, margin, side - margin, side - margin)),
            folder / "IM-0902-0001.jpeg",
            90,
        ),
    }


def hashes_of(paths: list[Path]) -> np.ndarray:
    stack, decoded = phash.thumbnails([str(p) for p in paths])
    assert decoded.all()
    return phash.signatures(stack)


def test_the_hash_is_the_median_thresholded_low_dct_block():
    """The bits of imagehash.phash(image, hash_size=16): 16 x 16 lowest DCT frequencies of
    the 64 px thumbnail, each above the block's median; and the same bits after a change
    of brightness and contrast."""
    thumbs = np.random.default_rng(0).integers(0, 256, (3, 64, 64)).astype(np.float32)
    block = dctn(thumbs, axes=(-2, -1), norm="ortho")[:, :16, :16].reshape(3, -1)
    expected = np.packbits(block > np.median(block, axis=1, keepdims=True), axis=1)
    packed = phash.signatures(thumbs)
    assert packed.shape == (3, len(phash.CROPS), phash.BITS // 8)
    np.testing.assert_array_equal(packed[:, 0], expected)
    np.testing.assert_array_equal(phash.signatures(0.8 * thumbs + 20)[:, 0], expected)
    assert (phash.distances(packed, packed).diagonal() == 0).all()


def test_close_pairs_in_chunks_equals_the_whole_matrix():
    packed = np.random.default_rng(1).integers(0, 256, (40, len(phash.CROPS), 32), np.uint8)
    packed[7] = packed[3]
    whole = phash.distances(packed, packed)
    pairs = phash.close_pairs(packed, packed, max_distance=120, chunk=6)
    rows, columns = np.nonzero(whole <= 120)
    assert sorted(map(tuple, pairs.tolist())) == sorted(
        zip(rows.tolist(), columns.tolist(), whole[rows, columns].tolist())
    )
    assert [3, 7, 0] in pairs.tolist()


@pytest.fixture()
def planted_folder(tmp_path):
    """A drawn Kaggle folder with one radiograph-like picture (a 224 px phantom) in
    train/NORMAL and three re-exported copies of it in test/NORMAL."""
    data = make_drawn_folder(tmp_path / "data", 12, 1, splits=("train", "test"))
    pixels, _ = make_phantom(5, False, 224)
    original = Image.fromarray(pixels).convert("RGB")
    train_copy = save_jpeg(original, data / "train" / "NORMAL" / "IM-0900-0001.jpeg", 95)
    copies = planted_copies(original, data / "test" / "NORMAL")
    return data, train_copy, copies


def test_resized_brightened_and_cropped_copies_in_test_are_reported(
    planted_folder, tmp_path, caplog
):
    data, original, copies = planted_folder
    out = tmp_path / "report"
    out.mkdir()
    with caplog.at_level("WARNING"):
        example_gen(out, data_dir=str(data), seed=0)
    stats = json.loads((out / "stats.json").read_text())
    near = stats["near_duplicates"]
    assert near["action"] == "report" and near["found"] == 3 and near["removed"] == 0
    found = {pair["path"]: pair for pair in near["pairs"]}
    assert set(found) == {str(p.resolve()) for p in copies.values()}
    for pair in found.values():
        assert pair["closest"] == str(original.resolve())
        assert pair["split"] == "test" and pair["distance"] <= phash.MAX_DISTANCE
    frame = pd.read_csv(out / "examples.csv")
    assert set(found) <= set(frame.loc[frame["split"] == "test", "path"])  # kept
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith("example_gen: 3 val/test image(s)")
    assert "kept (--near_duplicates remove drops them)" in warnings[0]
    assert stats["duplicate_images"]["removed_across_splits"] == 0


def test_near_duplicates_remove_takes_them_out_of_test_and_the_model_card_says_so(
    planted_folder, tmp_path
):
    data, _, copies = planted_folder
    out = tmp_path / "run" / "example_gen"
    out.mkdir(parents=True)
    example_gen(out, data_dir=str(data), seed=0, near_duplicates="remove")
    stats = json.loads((out / "stats.json").read_text())
    frame = pd.read_csv(out / "examples.csv")
    assert not {str(p.resolve()) for p in copies.values()} & set(frame["path"])
    assert stats["near_duplicates"]["removed"] == 3 and stats["leakage"]["removed"] == 3
    assert stats["counts"]["test"] == {"NORMAL": 12, "PNEUMONIA": 12}
    card = markdown(build_model_card(out.parent))
    assert "Leakage checks" in card
    assert "near-duplicates: 3 val/test image(s)" in card and "removed" in card


def test_an_unknown_near_duplicates_action_is_one_line(tmp_path):
    from components.errors import DataError

    with pytest.raises(DataError, match="--near_duplicates 'drop': expected one of report"):
        example_gen(tmp_path, data_dir=str(tmp_path), near_duplicates="drop")


# The two different radiographs of the real train split whose hashes lie closest
# (benchmarks/near_duplicates.py: 32 bits, two children framed alike).
CLOSEST_DIFFERENT = ("person1565_bacteria_4095.jpeg", "person1637_bacteria_4339.jpeg")


def test_two_different_real_radiographs_are_not_matched(shared_data, tmp_path):
    folder = shared_data / "chest_xray" / "train" / "PNEUMONIA"
    first, second = (folder / name for name in CLOSEST_DIFFERENT)
    with Image.open(first) as image:
        copies = planted_copies(image.convert("RGB"), tmp_path / "copies")
    packed = hashes_of([first, second, *copies.values()])
    distance = phash.distances(packed[:1], packed)[0]
    assert distance[1] >= phash.MAX_DISTANCE + 8, distance  # a margin, not a near miss
    assert (distance[2:] <= phash.MAX_DISTANCE).all(), distance


def test_official_kaggle_test_split_stays_whole_and_a_planted_copy_is_reported(
    shared_data, tmp_path
):
    """train/ the real train split, test/ the development site (half the official test
    split; 162 of its 311 images carry a person number train/ has too), through links."""
    data = tmp_path / "data"
    for split, source in (("train", "chest_xray/train"), ("test", "chest_xray_site")):
        for label in ("NORMAL", "PNEUMONIA"):
            (data / split / label).mkdir(parents=True)
            for path in (shared_data / source / label).iterdir():
                (data / split / label / path.name).symlink_to(path)
    original = shared_data / "chest_xray" / "train" / "PNEUMONIA" / "person1_bacteria_1.jpeg"
    planted = data / "test" / "PNEUMONIA" / "person1_bacteria_9000.jpeg"
    with Image.open(original) as image:
        save_jpeg(image.resize((200, 200), Image.Resampling.LANCZOS), planted, 80)
    out = tmp_path / "out"
    out.mkdir()
    example_gen(out, data_dir=str(data), seed=0)
    frame = pd.read_csv(out / "examples.csv")
    stats = json.loads((out / "stats.json").read_text())
    site = {str(p.resolve()) for p in (shared_data / "chest_xray_site").rglob("*.jpeg")}
    assert site <= set(frame.loc[frame["split"] == "test", "path"])
    assert stats["counts"]["test"] == {"NORMAL": 116, "PNEUMONIA": 196}
    assert stats["cross_split_patients"]["removed"] == 0
    near = stats["near_duplicates"]
    assert [(p["path"], p["closest"]) for p in near["pairs"]] == [
        (str(planted.resolve()), str(original.resolve()))
    ]
