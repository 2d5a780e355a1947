"""ExampleGen: files -> an examples table (path, label, patient_id, split, pathogen).

Three sources: a Kaggle-layout folder, an NIH ChestX-ray14-style CSV, or a TFDS builder
(synthetic_cxr, exported to PNG files so every source looks the same downstream).
Writes `examples.csv` and `stats.json` (counts per split and class, patient overlap
between splits, skipped files with reasons).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from absl import logging
from PIL import Image
from sklearn.model_selection import StratifiedGroupKFold

from components.artifacts import write_csv, write_json
from components.errors import DataError
from datasets.chest_xray_pneumonia import file_names

CLASS_FOLDERS = ("NORMAL", "PNEUMONIA")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".gif")
# Kaggle's val/ has 16 images: too few to choose a threshold or stop early on.
MIN_VAL_IMAGES = 100
COLUMNS = ["path", "label", "patient_id", "split", "pathogen"]


def check_image(path: Path) -> str | None:
    """Why `path` is not a usable image, or None when it decodes.

    PIL's draft mode decodes JPEGs at reduced scale, so checking thousands of full-size
    radiographs takes seconds; truncated and corrupt files still fail on load().
    """
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with Image.open(path) as image:
            if image.format not in {"JPEG", "PNG", "BMP", "GIF"}:
                return f"unsupported image format {image.format}"
            if image.format == "JPEG":
                image.draft("L", (64, 64))
            image.load()
    except OSError as error:  # PIL raises OSError subclasses for unreadable data
        return f"unreadable image ({error})"
    except (ValueError, Image.DecompressionBombError) as error:
        return f"unreadable image ({error})"
    return None


def split_by_patient(frame: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """A boolean mask of rows to hold out: about `fraction` of patients, stratified by label.

    StratifiedGroupKFold keeps every patient's images on one side and the class balance
    close to the whole; we take one fold of round(1 / fraction).
    """
    n_splits = max(2, round(1.0 / fraction))
    groups = frame["patient_id"].to_numpy()
    if len(np.unique(groups)) < n_splits:
        raise DataError(f"too few patients ({len(np.unique(groups))}) to hold out "
                        f"{fraction:.0%} by patient")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    _, held_out = next(splitter.split(frame, frame["label"], groups))
    mask = np.zeros(len(frame), dtype=bool)
    mask[held_out] = True
    return mask


def scan_kaggle_folder(data_dir: Path) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Rows for every image under <data_dir>/<split>/<CLASS>/; unreadable ones skipped."""
    if not data_dir.is_dir():
        raise DataError(f"--data_dir {data_dir} is not a folder")
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for split_folder in ("train", "val", "test"):
        split_dir = data_dir / split_folder
        if not split_dir.is_dir():
            continue
        unknown = sorted(p.name for p in split_dir.iterdir()
                         if p.is_dir() and p.name not in CLASS_FOLDERS)
        for name in unknown:
            skipped.append({"path": str(split_dir / name), "reason": "unknown class folder"})
        found = len(rows)
        for label in CLASS_FOLDERS:
            class_dir = split_dir / label
            if not class_dir.is_dir():
                raise DataError(f"missing class folder {class_dir} (expected NORMAL/ and PNEUMONIA/)")
            for path in sorted(class_dir.iterdir()):
                if path.name.startswith("."):
                    continue
                if path.is_dir() or path.suffix.lower() not in IMAGE_SUFFIXES:
                    skipped.append({"path": str(path), "reason": "not an image file"})
                    continue
                problem = check_image(path)
                if problem:
                    skipped.append({"path": str(path), "reason": problem})
                    continue
                rows.append({
                    "path": str(path.resolve()),
                    "label": label,
                    "patient_id": file_names.patient_id(path.name),
                    "split": split_folder,
                    "pathogen": file_names.pathogen(path.name, label),
                })
        if len(rows) == found:
            raise DataError(f"the {split_folder} split is empty: no readable images in {split_dir}")
    if not (data_dir / "train").is_dir():
        raise DataError(f"no train/ folder in --data_dir {data_dir}")
    return pd.DataFrame(rows, columns=COLUMNS), skipped


def assign_kaggle_splits(frame: pd.DataFrame, val_fraction: float, test_fraction: float,
                         seed: int) -> tuple[pd.DataFrame, list[str]]:
    """train/val/test, with patient-level hold-outs off train where a folder is missing."""
    notes: list[str] = []
    folder = frame["split"]  # the folder each image came from
    split = folder.copy()
    n_val = int((folder == "val").sum())
    if n_val < MIN_VAL_IMAGES:
        train = frame.index[folder == "train"]
        held = split_by_patient(frame.loc[train], val_fraction, seed)
        split[train[held]] = "val"
        notes.append(f"val/ has {n_val} images (< {MIN_VAL_IMAGES}): validation is split "
                     "off train by patient")
        if n_val:
            # Too few to select on, but unseen and from another acquisition: test them.
            split[folder == "val"] = "test"
            notes.append(f"the {n_val} val/ images join test")
    if not (folder == "test").any():
        train = frame.index[split == "train"]
        held = split_by_patient(frame.loc[train], test_fraction, seed + 1)
        split[train[held]] = "test"
        notes.append("no test/ folder: test is split off train by patient")
    return frame.assign(split=split), notes


def read_nih_csv(csv_path: Path, balance: bool, seed: int
                 ) -> tuple[pd.DataFrame, list[dict[str, str]], dict[str, int]]:
    """Rows from an NIH ChestX-ray14-style CSV (`image_path,label`, findings split by `|`).

    "Pneumonia" among the findings -> PNEUMONIA; exactly "No Finding" -> NORMAL; other
    findings are dropped (counted). Relative paths are relative to the CSV's folder.
    """
    if not csv_path.is_file():
        raise DataError(f"--csv {csv_path} does not exist")
    try:
        table = pd.read_csv(csv_path, encoding="utf-8-sig", dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise DataError(f"--csv {csv_path} is not a readable CSV ({error})") from error
    missing = [c for c in ("image_path", "label") if c not in table.columns]
    if missing:
        raise DataError(f"--csv {csv_path} lacks column(s) {', '.join(missing)} "
                        "(expected image_path,label)")
    dropped: dict[str, int] = {"other_findings": 0, "missing_values": 0, "duplicates": 0}
    n_rows = len(table)
    table = table.dropna(subset=["image_path", "label"])
    dropped["missing_values"] = n_rows - len(table)
    before = len(table)
    table = table.drop_duplicates(subset=["image_path"])
    dropped["duplicates"] = before - len(table)
    findings = table["label"].str.split("|").apply(lambda items: {i.strip() for i in items})
    label = np.where(findings.apply(lambda f: "Pneumonia" in f), "PNEUMONIA",
                     np.where(findings.apply(lambda f: f == {"No Finding"}), "NORMAL", ""))
    dropped["other_findings"] = int((label == "").sum())
    table = table.assign(label=label)[label != ""]
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for record in table.itertuples(index=False):
        path = Path(record.image_path)
        path = path if path.is_absolute() else csv_path.parent / path
        problem = "file not found" if not path.is_file() else check_image(path)
        if problem:
            skipped.append({"path": str(path), "reason": problem})
            continue
        patient = getattr(record, "patient_id", None)
        rows.append({"path": str(path.resolve()), "label": record.label,
                     "patient_id": str(patient) if isinstance(patient, str) and patient else path.stem,
                     "split": "", "pathogen": "normal" if record.label == "NORMAL" else ""})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if balance and not frame.empty:
        smallest = int(frame["label"].value_counts().min())
        keep = frame.groupby("label").sample(n=smallest, random_state=seed).index
        frame = frame.loc[keep].sort_values("path").reset_index(drop=True)
    return frame, skipped, dropped


def assign_csv_splits(frame: pd.DataFrame, val_fraction: float, test_fraction: float,
                      seed: int) -> pd.DataFrame:
    """Stratified train/val/test, grouped by patient so no patient crosses a split."""
    frame = frame.reset_index(drop=True)
    split = pd.Series("train", index=frame.index)
    test = split_by_patient(frame, test_fraction, seed + 1)
    split[test] = "test"
    rest = frame.index[~test]
    val = split_by_patient(frame.loc[rest], val_fraction / (1.0 - test_fraction), seed)
    split[rest[val]] = "val"
    return frame.assign(split=split)


def export_tfds_builder(name: str, out_dir: Path) -> pd.DataFrame:
    """Prepares TFDS builder `name` and writes its images (and masks) as PNG files."""
    import tensorflow_datasets as tfds

    import datasets.synthetic_cxr  # noqa: F401  (registers the builder)

    if not sys.stderr.isatty():  # progress bars only for a person at a terminal
        tfds.disable_progress_bar()
    builder = tfds.builder(name, data_dir=os.fspath(out_dir / "tfds"))
    builder.download_and_prepare()
    label_names = builder.info.features["label"].names
    rows: list[dict[str, Any]] = []
    for tfds_split, split in (("train", "train"), ("validation", "val"), ("test", "test")):
        image_dir = out_dir / "images" / split
        mask_dir = out_dir / "masks" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        for example in tfds.as_numpy(builder.as_dataset(split=tfds_split)):
            file_name = example["file_name"].decode()
            label = label_names[int(example["label"])]
            image_path = image_dir / file_name
            mask_path = mask_dir / file_name
            Image.fromarray(example["image"][..., 0]).save(image_path)
            Image.fromarray(example["mask"][..., 0] * 255).save(mask_path)
            rows.append({"path": str(image_path.resolve()), "label": label,
                         "patient_id": example["patient_id"].decode(), "split": split,
                         "pathogen": "normal" if label == "NORMAL" else "",
                         "mask_path": str(mask_path.resolve())})
    return pd.DataFrame(rows).sort_values(["split", "path"]).reset_index(drop=True)


def summarize(frame: pd.DataFrame) -> dict[str, Any]:
    """Counts per split and class/pathogen, patients per split and cross-split overlap."""
    counts = {split: {str(k): int(v) for k, v in group["label"].value_counts().sort_index().items()}
              for split, group in frame.groupby("split")}
    pathogens = {split: {str(k or "unknown"): int(v)
                         for k, v in group["pathogen"].value_counts().sort_index().items()}
                 for split, group in frame.groupby("split")}
    patients = {split: set(group["patient_id"]) for split, group in frame.groupby("split")}
    overlap = {}
    names = sorted(patients)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            shared = sorted(patients[first] & patients[second])
            overlap[f"{first}-{second}"] = {"patients": len(shared), "examples": shared[:20]}
    return {"counts": counts, "pathogens": pathogens,
            "patients": {s: len(p) for s, p in patients.items()},
            "patient_overlap": overlap}


def example_gen(
    out_dir: Path,
    *,
    data_dir: str | None = None,
    csv: str | None = None,
    tfds_name: str = "synthetic_cxr",
    task: str = "binary",
    seed: int = 42,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    balance: bool = False,
    data_fingerprint: str = "",
    tensorboard_dir: Path | None = None,
) -> dict[str, Any]:
    """The ExampleGen component: writes examples.csv and stats.json into `out_dir`."""
    del data_fingerprint, tensorboard_dir  # the fingerprint only keys the runner's cache
    skipped: list[dict[str, str]] = []
    extra: dict[str, Any] = {}
    if data_dir:
        source = f"kaggle folder {data_dir}"
        frame, skipped = scan_kaggle_folder(Path(data_dir))
        if frame.empty:
            raise DataError(f"no readable images under {data_dir}")
        frame, extra["notes"] = assign_kaggle_splits(frame, val_fraction, test_fraction, seed)
    elif csv:
        source = f"NIH-style CSV {csv}"
        frame, skipped, extra["dropped_rows"] = read_nih_csv(Path(csv), balance, seed)
        if frame.empty:
            raise DataError(f"--csv {csv} has no usable rows (Pneumonia or No Finding with an existing image)")
        frame = assign_csv_splits(frame, val_fraction, test_fraction, seed)
    else:
        source = f"TFDS builder {tfds_name}"
        frame = export_tfds_builder(tfds_name, out_dir)
    if task == "three_class":
        unknown = frame["pathogen"] == ""
        skipped += [{"path": p, "reason": "pathogen unknown (three_class needs bacteria/virus "
                     "in the file name)"} for p in frame.loc[unknown, "path"]]
        frame = frame[~unknown]
    for split in ("train", "val", "test"):
        if not (frame["split"] == split).any():
            raise DataError(f"the {split} split is empty ({source})")
    frame = frame.sort_values(["split", "label", "path"]).reset_index(drop=True)
    write_csv(out_dir / "examples.csv", frame)
    stats = {"source": source, "task": task, **summarize(frame), **extra,
             "skipped": skipped, "skipped_count": len(skipped)}
    write_json(out_dir / "stats.json", stats)
    for item in skipped[:20]:
        logging.warning("skipped %s: %s", item["path"], item["reason"])
    logging.info("example_gen: %d examples from %s (%d skipped)", len(frame), source, len(skipped))
    return {"examples": "examples.csv", "n_examples": int(len(frame)), "skipped": len(skipped)}
