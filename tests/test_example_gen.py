"""ExampleGen: Kaggle folders, NIH-style CSVs, patient-level splits, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.small_folders import draw_image, make_drawn_folder
from components.errors import DataError
from components.pneumonia.example_gen import (
    assign_csv_splits,
    read_nih_csv,
    remove_cross_split_patients,
    scan_kaggle_folder,
    split_by_patient,
)
from components.pneumonia.example_gen import run as example_gen


def test_patient_split_keeps_each_patient_on_one_side(tmp_path):
    frame, _ = scan_kaggle_folder(make_drawn_folder(tmp_path / "data", 20, 3))
    held = split_by_patient(frame, 0.2, seed=1)
    assert 0 < held.sum() < len(frame)
    assert not set(frame.loc[held, "patient_id"]) & set(frame.loc[~held, "patient_id"])
    assert set(frame.loc[held, "label"]) == {"NORMAL", "PNEUMONIA"}  # stratified


def test_kaggle_folder_without_val_or_test_is_split_by_patient(tmp_path):
    data = make_drawn_folder(tmp_path / "data", 20, 2)
    out = tmp_path / "out"
    out.mkdir()
    example_gen(out, data_dir=str(data), seed=3)
    frame = pd.read_csv(out / "examples.csv")
    stats = json.loads((out / "stats.json").read_text())
    assert set(frame["split"]) == {"train", "val", "test"}
    assert list(frame.columns[:5]) == ["path", "label", "patient_id", "split", "pathogen"]
    assert all(v["patients"] == 0 for v in stats["patient_overlap"].values())
    assert set(frame.loc[frame["label"] == "PNEUMONIA", "pathogen"]) == {"bacteria", "virus"}
    assert any("split off train by patient" in note for note in stats["notes"])


def test_tiny_official_val_joins_test_and_test_folder_is_kept(tmp_path):
    data = make_drawn_folder(tmp_path / "data", 15, 2, splits=("train", "test"))
    draw_image(data / "val" / "NORMAL" / "NORMAL2-IM-9999-0001.jpeg", 9001)
    draw_image(data / "val" / "PNEUMONIA" / "person9999_bacteria_1.jpeg", 9002)
    out = tmp_path / "out"
    out.mkdir()
    example_gen(out, data_dir=str(data), seed=0)
    frame = pd.read_csv(out / "examples.csv")
    test_paths = frame.loc[frame["split"] == "test", "path"]
    assert test_paths.str.contains("/val/").sum() == 2
    assert test_paths.str.contains("/test/").sum() == 60
    assert not frame.loc[frame["split"] == "val", "path"].str.contains("/test/").any()


def test_unreadable_images_are_skipped_and_listed(tmp_path):
    data = make_drawn_folder(tmp_path / "data", 12, 2)
    (data / "train" / "NORMAL" / "IM-7777-0001.jpeg").write_bytes(b"")
    (data / "train" / "NORMAL" / "IM-7778-0001.jpeg").write_text("not an image at all")
    good = next((data / "train" / "PNEUMONIA").iterdir())
    (data / "train" / "PNEUMONIA" / "person8888_virus_1.jpeg").write_bytes(good.read_bytes()[:200])
    (data / "train" / "PNEUMONIA" / "notes.txt").write_text("hello")
    out = tmp_path / "out"
    out.mkdir()
    example_gen(out, data_dir=str(data))
    stats = json.loads((out / "stats.json").read_text())
    reasons = {item["path"].rsplit("/", 1)[-1]: item["reason"] for item in stats["skipped"]}
    assert reasons["IM-7777-0001.jpeg"] == "empty file"
    assert "unreadable" in reasons["IM-7778-0001.jpeg"]
    assert "unreadable" in reasons["person8888_virus_1.jpeg"]
    assert reasons["notes.txt"] == "not an image file"
    assert stats["skipped_count"] == 4
    assert not pd.read_csv(out / "examples.csv")["path"].str.contains("7777|7778|8888").any()


def test_missing_class_folder_is_a_data_error(tmp_path):
    data = make_drawn_folder(tmp_path / "data", 5, 1)
    for path in (data / "train" / "NORMAL").iterdir():
        path.unlink()
    (data / "train" / "NORMAL").rmdir()
    with pytest.raises(DataError, match="missing class folder .*NORMAL"):
        scan_kaggle_folder(data)


def write_nih(tmp_path, rows: list[tuple[str, str]], header: str = "image_path,label") -> str:
    for i, (name, _) in enumerate(rows):
        if not name.startswith("missing"):
            draw_image(tmp_path / "images" / name, i)
    csv = tmp_path / "nih.csv"
    csv.write_text(header + "\n" + "\n".join(f"images/{n},{label}" for n, label in rows) + "\n")
    return str(csv)


def test_nih_csv_labels_and_drops(tmp_path):
    rows = [
        (f"p{i:03d}.png", "Pneumonia|Infiltration" if i % 3 == 0 else "No Finding")
        for i in range(30)
    ]
    rows += [
        ("x1.png", "Effusion"),
        ("x2.png", "No Finding|Effusion"),
        ("missing.png", "Pneumonia"),
    ]
    csv = Path(write_nih(tmp_path, rows))
    frame, skipped, dropped = read_nih_csv(csv, balance=False, seed=0)
    assert (frame["label"] == "PNEUMONIA").sum() == 10
    assert (frame["label"] == "NORMAL").sum() == 20
    assert dropped["other_findings"] == 2
    assert [s["reason"] for s in skipped] == ["file not found"]
    balanced, _, _ = read_nih_csv(csv, balance=True, seed=0)
    assert balanced["label"].value_counts().to_dict() == {"NORMAL": 10, "PNEUMONIA": 10}
    split = assign_csv_splits(balanced, 0.2, 0.2, seed=0)
    assert set(split["split"]) == {"train", "val", "test"}


def test_nih_csv_without_required_columns_is_a_data_error(tmp_path):
    csv = Path(write_nih(tmp_path, [("a.png", "No Finding")], header="file,finding"))
    with pytest.raises(DataError, match="lacks column.*image_path.*label"):
        read_nih_csv(csv, balance=False, seed=0)


def test_nih_file_names_keep_a_patients_follow_ups_together(tmp_path, caplog):
    rows = [
        (f"{patient:08d}_{visit:03d}.png", "Pneumonia" if patient % 2 else "No Finding")
        for patient in range(1, 41)
        for visit in range(3)
    ]
    frame, _, _ = read_nih_csv(Path(write_nih(tmp_path, rows)), balance=False, seed=0)
    assert frame["patient_id"].nunique() == 40
    assert (frame["patient_id"] == "00000001").sum() == 3
    split = assign_csv_splits(frame, 0.2, 0.2, seed=0)
    assert split.groupby("patient_id")["split"].nunique().max() == 1
    assert "neither a patient_id" not in caplog.text


def test_nih_csv_without_any_patient_warns_in_one_line(tmp_path, caplog):
    rows = [(f"scan{i}.png", "No Finding") for i in range(4)]
    with caplog.at_level("WARNING"):
        frame, _, _ = read_nih_csv(Path(write_nih(tmp_path, rows)), balance=False, seed=0)
    assert frame["patient_id"].tolist() == [f"scan{i}" for i in range(4)]
    warnings = [r.getMessage() for r in caplog.records if "patient_id" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("example_gen: 4 of 4 images")


@pytest.mark.parametrize("layout", ["flat", "kaggle_test", "kaggle_all", "kaggle_no_test", "csv"])
def test_external_mode_makes_every_image_a_test_image(tmp_path, layout):
    """pipelines.evaluate's data: no train/ needed, nothing held out, all of it test."""
    out = tmp_path / "example_gen"
    out.mkdir()
    if layout == "flat":
        data = make_drawn_folder(tmp_path / "d", 3, 1, splits=("test",)) / "test"
    elif layout == "csv":
        data = make_drawn_folder(tmp_path / "d", 3, 1, splits=("test",))
        rows = [
            f"{p.relative_to(data)},{'Pneumonia' if p.parent.name == 'PNEUMONIA' else 'No Finding'}"
            for p in sorted(data.rglob("*.jpeg"))
        ]
        (data / "labels.csv").write_text("image_path,label\n" + "\n".join(rows) + "\n")
    else:
        splits = ("train",) if layout == "kaggle_no_test" else ("train", "test")
        data = make_drawn_folder(tmp_path / "d", 3, 1, splits=splits)
    scope = "all" if layout == "kaggle_all" else "test"
    kwargs = {"csv": str(data / "labels.csv")} if layout == "csv" else {"data_dir": str(data)}
    if layout == "kaggle_no_test":
        with pytest.raises(DataError, match="a test/ folder"):
            example_gen(out, external=scope, **kwargs)
        return
    example_gen(out, external=scope, **kwargs)
    examples = pd.read_csv(out / "examples.csv")
    assert set(examples["split"]) == {"test"}
    assert len(examples) == (12 if layout == "kaggle_all" else 6)


def test_kaggle_test_folder_keeps_every_image_whose_person_number_is_also_in_train(
    tmp_path, caplog
):
    """The real download numbers patients anew in each split: test/person3 is not train's
    person3, and a given test/ (or val/) is never pruned by a file-name number."""
    data = make_drawn_folder(tmp_path / "data", 15, 2, splits=("train", "test"))
    draw_image(data / "val" / "PNEUMONIA" / "person3_virus_9998.jpeg", 9100)  # number in train
    draw_image(data / "val" / "NORMAL" / "IM-0004-0001.jpeg", 9101)  # a file name train has too
    out = tmp_path / "out"
    out.mkdir()
    with caplog.at_level("WARNING"):
        example_gen(out, data_dir=str(data), seed=0)
    frame = pd.read_csv(out / "examples.csv", keep_default_na=False)
    stats = json.loads((out / "stats.json").read_text())
    given = sorted(str(p.resolve()) for p in (data / "test").rglob("*.jpeg"))
    given += sorted(str(p.resolve()) for p in (data / "val").rglob("*.jpeg"))
    assert sorted(frame.loc[frame["split"] == "test", "path"]) == sorted(given)  # all 62
    assert (frame["path"].str.contains("/train/")).sum() == 60  # training keeps all too
    test_ids = set(frame.loc[frame["split"] == "test", "patient_id"])
    assert {"test/person3", "test/IM-0003", "val/person3", "val/IM-0004"} <= test_ids
    assert "person3" in set(frame.loc[frame["split"] != "test", "patient_id"])
    assert all(v["patients"] == 0 for v in stats["patient_overlap"].values())
    assert stats["cross_split_patients"]["removed"] == 0
    assert stats["near_duplicates"]["found"] == 0 and stats["leakage"]["removed"] == 0
    assert any("never pruned by a file-name number" in x for x in stats["leakage"]["summary"])
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def write_nih_patients(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """An NIH-style CSV with a patient_id column (blank: the file name says the patient)."""
    for i, (name, _, _) in enumerate(rows):
        draw_image(tmp_path / "images" / name, 500 + i)
    csv = tmp_path / "nih.csv"
    lines = [f"images/{name},{label},{patient}" for name, label, patient in rows]
    csv.write_text("image_path,label,patient_id\n" + "\n".join(lines) + "\n")
    return csv


def test_nih_csv_patient_in_two_splits_stays_on_one_side(tmp_path, caplog):
    """NIH patient ids name real patients in every split: one patient's images, named by
    the patient_id column or by the NIH file name, all land on one side; a frame that
    still has a training patient in test loses those test images, with one warning."""
    rows = [
        (f"{p:08d}_{v:03d}.png", "Pneumonia" if p % 2 else "No Finding", "")
        for p in range(1, 31)
        for v in range(2)
    ]
    # Patient 13 with both labels, five of the rows saying so by patient_id only.
    rows += [
        (f"scan_13_{v}.png", "Pneumonia" if v % 2 else "No Finding", "00000013") for v in range(5)
    ]
    out = tmp_path / "out"
    out.mkdir()
    example_gen(out, csv=str(write_nih_patients(tmp_path, rows)), seed=0)
    frame = pd.read_csv(out / "examples.csv", keep_default_na=False, dtype=str)
    stats = json.loads((out / "stats.json").read_text())
    assert (frame["patient_id"] == "00000013").sum() == 7
    assert frame.groupby("patient_id")["split"].nunique().max() == 1
    assert all(v["patients"] == 0 for v in stats["patient_overlap"].values())
    assert stats["cross_split_patients"]["removed"] == 0
    # The guard itself: a split made some other way, patient 13 in train and in test.
    moved = frame.copy()
    rows_13 = moved.index[moved["patient_id"] == "00000013"]
    moved.loc[rows_13, "split"] = "test"
    moved.loc[rows_13[:2], "split"] = "train"
    with caplog.at_level("WARNING"):
        kept, report = remove_cross_split_patients(moved)
    assert report["removed"] == 5 and report["patients"] == ["00000013"]
    assert kept.loc[kept["patient_id"] == "00000013", "split"].tolist() == ["train", "train"]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "example_gen: removed 5 val/test image(s) of 1 patient(s) who also "
        "have images in train (listed in stats.json cross_split_patients)"
    ]


@pytest.mark.parametrize("val_fraction, test_fraction", [(0.1, 0.1), (0.2, 0.3)])
def test_csv_holds_out_the_asked_share_of_patients(tmp_path, val_fraction, test_fraction):
    """--val_fraction and --test_fraction: the share of patients (not images) in test and
    then val of a CSV without a split: one fold of round(1 / share) folds stratified by
    label (split_by_patient), whose sizes may differ by a few patients."""
    rows = [
        (f"{p:08d}_{v:03d}.png", "Pneumonia" if p % 2 else "No Finding", "")
        for p in range(1, 61)
        for v in range(1 + p % 3)  # patients with one to three images
    ]
    out = tmp_path / "out"
    out.mkdir()
    csv = write_nih_patients(tmp_path, rows)
    example_gen(out, csv=str(csv), seed=0, val_fraction=val_fraction, test_fraction=test_fraction)
    frame = pd.read_csv(out / "examples.csv", keep_default_na=False, dtype=str)
    patients = frame.groupby("split")["patient_id"].nunique()
    test_patients = 60 / round(1 / test_fraction)
    val_patients = (60 - patients["test"]) / round((1 - test_fraction) / val_fraction)
    assert abs(patients["test"] - test_patients) <= 3, patients.to_dict()
    assert abs(patients["val"] - val_patients) <= 3, patients.to_dict()
