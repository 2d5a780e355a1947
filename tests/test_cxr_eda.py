"""The chest X-ray EDA component: figures, numbers, TensorBoard images, the HTML page."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.small_folders import (
    copy_real_folder,
    draw_image,
    make_drawn_folder,
)
from components.pneumonia.eda import run as cxr_eda
from components.pneumonia.example_gen import run as example_gen
from tests.support.tensorboard_events import image_tags

FIGURES = (
    "class_balance",
    "image_sizes",
    "intensity",
    "mean_images",
    "samples_by_class",
    "samples_by_pathogen",
)
DRAWN = (40, 32)  # datasets/chest_xray_pneumonia/small_folders.draw_image's default (width, height)
LARGE = (96, 64)  # the extra test-split images drawn here


def run_eda(tmp_path: Path, data: Path, **params) -> tuple[Path, Path, dict]:
    examples = tmp_path / "example_gen"
    examples.mkdir()
    example_gen(examples, data_dir=str(data), seed=0)
    out = tmp_path / "eda"
    out.mkdir()
    result = cxr_eda(
        out, examples=examples, tensorboard_dir=tmp_path / "tensorboard" / "eda", **params
    )
    return examples, out, result


@pytest.fixture(scope="module")
def drawn_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("cxr_eda")
    data = make_drawn_folder(
        tmp_path / "data", patients_per_class=10, images_per_patient=2, splits=("train", "test")
    )
    for i in range(3):  # larger images in test only: sizes must come out per split
        draw_image(data / "test" / "NORMAL" / f"IM-{2000 + i:04d}-0001.jpeg", 500 + i, LARGE)
        draw_image(
            data / "test" / "PNEUMONIA" / f"person{2000 + i}_virus_{900 + i}.jpeg",
            600 + i,
            LARGE,
            mode="RGB",
        )
    examples, out, result = run_eda(tmp_path, data, sample_per_group=4, seed=3)
    return tmp_path, examples, out, result


def test_figures_are_written_as_pngs_and_tensorboard_images(drawn_run):
    tmp_path, _, out, result = drawn_run
    assert result["figures"] == [f"{name}.png" for name in FIGURES]
    for name in FIGURES:
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {f"eda/{name}" for name in FIGURES} <= image_tags(tmp_path / "tensorboard")


def test_counts_match_the_examples_table(drawn_run):
    _, examples, out, result = drawn_run
    table = pd.read_csv(examples / "examples.csv", keep_default_na=False)
    eda = json.loads((out / "eda.json").read_text())
    expected = {
        split: {label: int(n) for label, n in group["label"].value_counts().items()}
        for split, group in table.groupby("split")
    }
    assert eda["counts"] == expected == result["counts"]
    assert eda["n_examples"] == len(table) == result["n_examples"]
    pathogens = {
        split: {
            p: int(n) for p, n in group["pathogen"].replace("", "unknown").value_counts().items()
        }
        for split, group in table.groupby("split")
    }
    assert eda["pathogens"] == pathogens


def test_image_sizes_are_the_drawn_sizes(drawn_run):
    _, examples, out, _ = drawn_run
    table = pd.read_csv(examples / "examples.csv", keep_default_na=False)
    sizes = json.loads((out / "eda.json").read_text())["image_sizes"]
    assert sizes["unreadable_count"] == 0
    large = table["path"].str.contains("-2000-|-2001-|-2002-|person200[012]_")
    for (split, label), group in table.groupby(["split", "label"]):
        numbers = sizes["by_split_class"][split][label]
        assert numbers["n"] == len(group)
        n_large = int(large[group.index].sum())
        if n_large:
            assert split == "test"
            assert numbers["width"]["max"] == LARGE[0] and numbers["height"]["max"] == LARGE[1]
            assert {(c["width"], c["height"]) for c in numbers["most_common"]} == {DRAWN, LARGE}
        else:
            assert numbers["width"]["min"] == numbers["width"]["max"] == DRAWN[0]
            assert numbers["height"]["min"] == numbers["height"]["max"] == DRAWN[1]
            assert numbers["aspect"]["median"] == pytest.approx(DRAWN[0] / DRAWN[1])
        assert numbers["width"]["min"] == DRAWN[0]
    per_image = pd.read_csv(out / "sizes.csv")
    assert len(per_image) == len(table)
    assert set(per_image.loc[large.to_numpy(), "width"]) == {LARGE[0]}
    assert set(per_image.loc[~large.to_numpy(), "width"]) == {DRAWN[0]}
    assert set(per_image["mode"]) == {"L", "RGB"}  # NORMAL drawn grey, PNEUMONIA drawn RGB


def test_intensity_statistics(drawn_run):
    _, examples, out, result = drawn_run
    table = pd.read_csv(examples / "examples.csv", keep_default_na=False)
    intensity = json.loads((out / "eda.json").read_text())["intensity"]
    # Fewer images than the cap: every one is read.
    assert intensity["n_images"] == len(table) == result["intensity_images"]
    assert set(intensity["by_class"]) == {"NORMAL", "PNEUMONIA"}
    for numbers in intensity["by_class"].values():
        # Uniform random pixels in 0..254: mean about 127, sd about 73 (JPEG smooths it).
        assert 110 < numbers["mean_intensity"] < 145
        assert 30 < numbers["std_intensity"] < 90
    per_image = pd.read_csv(out / "intensity.csv")
    assert per_image.groupby("label")["mean"].mean().round(3).to_dict() == pytest.approx(
        {k: v["mean_intensity"] for k, v in intensity["by_class"].items()}, abs=1e-3
    )


def test_intensity_sample_is_capped_and_seeded(tmp_path, drawn_run):
    _, examples, _, _ = drawn_run
    table = pd.read_csv(examples / "examples.csv", keep_default_na=False)
    groups = table.groupby(["split", "label"]).ngroups  # 3 splits x 2 classes
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        out.mkdir()
        cxr_eda(
            out, examples=examples, seed=5, max_intensity_images=2 * groups + 1, sample_per_group=2
        )
        runs.append(pd.read_csv(out / "intensity.csv"))
    assert len(runs[0]) == 2 * groups  # an equal share of the cap per (split, class)
    assert runs[0].groupby(["split", "label"]).size().eq(2).all()
    assert runs[0]["path"].tolist() == runs[1]["path"].tolist()


def test_html_is_self_contained_and_embeds_every_png(drawn_run):
    _, _, out, _ = drawn_run
    page = (out / "eda.html").read_text()
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert sorted(base64.b64decode(data) for data in embedded) == sorted(
        (out / f"{name}.png").read_bytes() for name in FIGURES
    )
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere


def test_real_sizes(tmp_path, shared_data):
    """Train images are stored at 224x224; the official val images are full resolution."""
    data = copy_real_folder(shared_data / "chest_xray", tmp_path / "data", per_class=30)
    examples, out, _ = run_eda(tmp_path, data)
    table = pd.read_csv(examples / "examples.csv", keep_default_na=False)
    per_image = pd.read_csv(out / "sizes.csv")
    from_train = table["path"].str.contains("/train/").to_numpy()
    from_val = table["path"].str.contains("/val/").to_numpy()
    assert from_train.sum() == 60 and from_val.sum() == 16
    assert set(zip(per_image.loc[from_train, "width"], per_image.loc[from_train, "height"])) == {
        (224, 224)
    }
    assert (per_image.loc[from_val, "width"] > 900).all()
    # ExampleGen moves the 16 official val images to test (too few to validate on):
    # the EDA must show that split's resolution apart from train's.
    sizes = json.loads((out / "eda.json").read_text())["image_sizes"]["by_split_class"]
    for label in ("NORMAL", "PNEUMONIA"):
        assert sizes["train"][label]["width"]["max"] == 224
        assert sizes["test"][label]["width"]["max"] > 900
    notes = json.loads((out / "eda.json").read_text())["notes"]
    assert any("resolution varies" in note for note in notes)
