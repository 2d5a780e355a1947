"""ExampleGen: files -> an examples table (path, label, patient_id, split, pathogen).

Three sources: a Kaggle-layout folder, an NIH ChestX-ray14-style CSV, or a TFDS builder
(synthetic_cxr, exported to PNG files so every source looks the same downstream).
Writes `examples.csv` and `stats.json` (counts per split and class, patient overlap
between splits, skipped files and CSV rows with reasons, and the leakage checks: byte-
identical and near-duplicate images across splits, and patients in two splits where a
patient id names the same person everywhere).

Bad items (unreadable, empty, too large or undecodable images, broken links, unknown
label strings, missing values, duplicates) are skipped and listed; problems that leave
nothing sensible to train or evaluate on (a missing or empty class folder, an empty
split, a CSV without the required columns) raise a DataError naming the file or folder.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
from absl import logging
from PIL import Image
from sklearn.model_selection import StratifiedGroupKFold
from tqdm import tqdm

from components import near_duplicates as phash
from components.artifacts import SPLITS, atomic_path, file_sha256, write_csv, write_json
from components.errors import DataError
from components.images import check_image, is_dicom_file
from datasets.chest_xray_pneumonia import file_names
from datasets.nih_chestxray14.findings import (
    NO_FINDING,
    finding_string,
    multilabel_findings,
    nih_label,
    parse_lesion_masks,
    patient_from_file_name,
)

CLASS_FOLDERS = file_names.CLASS_FOLDERS
# Kaggle's val/ has 16 images: too few to choose a threshold or stop early on.
MIN_VAL_IMAGES = 100
COLUMNS = ["path", "label", "patient_id", "split", "pathogen"]
# Earlier splits keep an image that leaks into a later one: training keeps all its data.
SPLIT_RANK = {"train": 0, "val": 1, "test": 2}
NEAR_DUPLICATE_ACTIONS = ("report", "remove")
# The TFDS builder run when no data is given: phantoms with known lesion masks.
SYNTHETIC_BUILDER = "synthetic_cxr"
# Shares of patients held out as val and test where the data gives no such split (a CSV
# without --split_lists; a Kaggle folder without val/ or test/): --val_fraction,
# --test_fraction. A small sample may need more: nih_sample's 10% is 20 test patients.
VAL_FRACTION = 0.1
TEST_FRACTION = 0.1
# NIH ChestX-ray14's official split (--split_lists DIR): file names, one a line.
SPLIT_LIST_FILES = {"train_val_list.txt": "train", "test_list.txt": "test"}


def split_by_patient(frame: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """A boolean mask of rows to hold out: about `fraction` of patients, stratified by label.

    StratifiedGroupKFold keeps every patient's images on one side and the class balance
    close to the whole; we take one fold of round(1 / fraction).
    """
    n_splits = max(2, round(1.0 / fraction))
    groups = frame["patient_id"].to_numpy()
    if len(np.unique(groups)) < n_splits:
        raise DataError(
            f"too few patients ({len(np.unique(groups))}) to hold out {fraction:.0%} by patient"
        )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    _, held_out = next(splitter.split(frame, frame["label"], groups))
    mask = np.zeros(len(frame), dtype=bool)
    mask[held_out] = True
    return mask


def list_folder(folder: Path) -> list[Path]:
    """The entries of `folder`, sorted; a folder that cannot be listed is a DataError."""
    try:
        return sorted(folder.iterdir())
    except OSError as error:
        raise DataError(f"cannot read folder {folder} ({error.strerror or error})") from error


def scan_kaggle_folder(
    data_dir: Path, progress: bool = False, folders: tuple[str, ...] = file_names.SPLIT_FOLDERS
) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Rows for every image under <data_dir>/<split>/<CLASS>/ for the split `folders`
    that exist; unreadable ones skipped. Every file's header is checked, which takes
    seconds for thousands of files: `progress` shows a bar."""
    if not data_dir.is_dir():
        raise DataError(f"--data_dir {data_dir} is not a folder")
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for split_folder in folders:
        if (data_dir / split_folder).is_dir():
            found, lost = scan_class_folders(data_dir / split_folder, split_folder, progress)
            rows += scoped_to_folder(found, split_folder)
            skipped += lost
    return pd.DataFrame(rows, columns=COLUMNS), skipped


def scoped_to_folder(rows: list[dict[str, Any]], split_folder: str) -> list[dict[str, Any]]:
    """Patient ids of a given val/ or test/ folder, prefixed with the folder (test/person90).

    Kaggle's `personN` numbers restart in each split folder: 170 numbers occur in both
    train/ and the official test/, and for every one of them the pathogen differs
    (person90 is viral in train, bacterial in test); the test split is 624 separate
    patients (Kermany et al. 2018). Within a folder the file name still groups images;
    across folders it names nobody, so a user's val/ or test/ is never pruned, nor its
    intervals merged with another folder's, by a file-name number. train/ keeps its own
    ids: validation and test held out of it are cut by them.
    """
    if split_folder == "train":
        return rows
    return [{**row, "patient_id": f"{split_folder}/{row['patient_id']}"} for row in rows]


def scan_class_folders(
    split_dir: Path, split: str, progress: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Rows for the images in <split_dir>/NORMAL/ and <split_dir>/PNEUMONIA/, as `split`.

    Only the two class folders are read, one level deep: nested folders (and symbolic
    links to folders, loops included) are listed as skipped, never followed.
    """
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = [
        {
            "path": str(split_dir / p.name),
            "reason": f"unknown class folder (expected {' and '.join(CLASS_FOLDERS)}); not read",
        }
        for p in list_folder(split_dir)
        if p.is_dir() and p.name not in CLASS_FOLDERS
    ]
    empty_classes = []
    for label in CLASS_FOLDERS:
        class_dir = split_dir / label
        if not class_dir.is_dir():
            raise DataError(f"missing class folder {class_dir} (expected NORMAL/ and PNEUMONIA/)")
        readable = 0
        for path in tqdm(
            list_folder(class_dir),
            desc=f"scanning {split_dir.name}/{label}",
            unit="file",
            disable=not progress,
            leave=False,
        ):
            if file_names.is_hidden(path.name):
                continue
            problem = unusable_file(path)
            if problem:
                skipped.append({"path": str(path), "reason": problem})
                continue
            readable += 1
            rows.append(
                {
                    "path": str(path.resolve()),
                    "label": label,
                    "patient_id": file_names.patient_id(path.name),
                    "split": split,
                    "pathogen": file_names.pathogen(path.name, label),
                }
            )
        if not readable:
            empty_classes.append(class_dir)
    if not rows:
        raise DataError(f"the {split} split is empty: no readable images in {split_dir}")
    if empty_classes:
        raise DataError(
            f"class folder {empty_classes[0]} has no readable images "
            "(every split needs both NORMAL and PNEUMONIA images)"
        )
    return rows, skipped


def unusable_file(path: Path) -> str | None:
    """Why a file in a class folder is not read, or None for a usable image."""
    if path.is_dir():
        return "a folder inside a class folder (not an image file; nested folders are not read)"
    if not file_names.has_image_suffix(path.name) and not is_dicom_file(path):
        return "not an image file"
    return check_image(path)


def scan_external_folder(
    data_dir: Path, scope: str, progress: bool = False
) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Every image to evaluate, all as `test`: a folder with NORMAL/ and PNEUMONIA/
    directly, or a Kaggle layout's test/ (`scope` "test") or all its splits ("all")."""
    if not data_dir.is_dir():
        raise DataError(f"--data_dir {data_dir} is not a folder")
    if any((data_dir / label).is_dir() for label in CLASS_FOLDERS):
        rows, skipped = scan_class_folders(data_dir, "test", progress)
        return pd.DataFrame(rows, columns=COLUMNS), skipped
    folders = file_names.SPLIT_FOLDERS if scope == "all" else ("test",)
    if not any((data_dir / folder).is_dir() for folder in file_names.SPLIT_FOLDERS):
        return scan_unlabelled_folder(data_dir)
    if not any((data_dir / folder).is_dir() for folder in folders):
        raise DataError(
            f"--data_dir {data_dir} has neither NORMAL/ and PNEUMONIA/ nor "
            + (
                "train/, val/ or test/"
                if scope == "all"
                else "a test/ folder (--split all reads train/ and val/ too)"
            )
        )
    frame, skipped = scan_kaggle_folder(data_dir, progress, folders)
    return frame.assign(split="test"), skipped


def scan_unlabelled_folder(data_dir: Path) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Every image directly in `data_dir` (no class folders: labels unknown), as `test`
    with an empty label; nested folders are listed as skipped, not read."""
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for path in list_folder(data_dir):
        if file_names.is_hidden(path.name):
            continue
        problem = (
            "a folder inside an unlabelled folder (not read; give NORMAL/ and PNEUMONIA/ "
            "for labelled images)"
            if path.is_dir()
            else unusable_file(path)
        )
        if problem:
            skipped.append({"path": str(path), "reason": problem})
            continue
        rows.append(
            {
                "path": str(path.resolve()),
                "label": "",
                "patient_id": file_names.patient_id(path.name),
                "split": "test",
                "pathogen": "",
            }
        )
    if not rows:
        raise DataError(
            f"--data_dir {data_dir} has no readable images: give images directly in it "
            "(unlabelled), NORMAL/ and PNEUMONIA/ folders, or a Kaggle layout with test/"
        )
    return pd.DataFrame(rows, columns=COLUMNS), skipped


def add_calibration_images(
    frame: pd.DataFrame, calibration_dir: Path, progress: bool = False
) -> tuple[pd.DataFrame, list[dict[str, str]], dict[str, Any]]:
    """A site's labelled calibration images (NORMAL/ and PNEUMONIA/) as the `val` split,
    the split a threshold is chosen on. Test images of a calibration patient are removed
    (byte copies are removed later, as across any splits), so that no calibration
    image, nor another image of its patient, counts in the test metrics."""
    if not calibration_dir.is_dir():
        raise DataError(f"--calibration_dir {calibration_dir} is not a folder")
    if not all((calibration_dir / label).is_dir() for label in CLASS_FOLDERS):
        raise DataError(
            f"--calibration_dir {calibration_dir} needs NORMAL/ and PNEUMONIA/ folders "
            "(labelled images of the site)"
        )
    rows, skipped = scan_class_folders(calibration_dir, "val", progress)
    calibration = pd.DataFrame(rows, columns=COLUMNS)
    shared = frame["patient_id"].isin(set(calibration["patient_id"]))
    # Expected, not a problem with the data: listed in stats.json, one log line.
    report = {
        "dir": str(calibration_dir),
        "images": int(len(calibration)),
        "removed_from_test": frame.loc[shared, "path"].tolist(),
    }
    logging.info(
        "example_gen: %d test images of the %d calibration images' patients removed from test",
        int(shared.sum()),
        len(calibration),
    )
    return pd.concat([calibration, frame[~shared]], ignore_index=True), skipped, report


def assign_kaggle_splits(
    frame: pd.DataFrame, val_fraction: float, test_fraction: float, seed: int
) -> tuple[pd.DataFrame, list[str]]:
    """train/val/test, with patient-level hold-outs off train where a folder is missing."""
    notes: list[str] = []
    folder = frame["split"]  # the folder each image came from
    split = folder.copy()
    n_val = int((folder == "val").sum())
    if n_val < MIN_VAL_IMAGES:
        train = frame.index[folder == "train"]
        # By train/'s file-name ids: conservative (file_names.patient_id says why).
        held = split_by_patient(frame.loc[train], val_fraction, seed)
        split[train[held]] = "val"
        notes.append(
            f"val/ has {n_val} images (< {MIN_VAL_IMAGES}): validation is split "
            "off train by patient"
        )
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


def _csv_hint(columns: list[str]) -> str:
    if len(columns) == 1 and any(sep in columns[0] for sep in (";", "\t")):
        return f"; the header reads as one column {columns[0]!r}: separate columns with commas"
    return f"; its columns are {', '.join(map(str, columns[:8]))}"


@dataclasses.dataclass
class CsvDrops:
    """What reading a CSV left out: skipped rows (with CSV line and reason) and counts."""

    skipped: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    dropped: dict[str, int] = dataclasses.field(
        default_factory=lambda: {
            "other_findings": 0,
            "missing_values": 0,
            "unknown_labels": 0,
            "duplicates": 0,
            "conflicting_labels": 0,
        }
    )
    # Kept images whose patient is unknown (no patient_id value, no NIH file name).
    unknown_patients: int = 0

    def skip(self, record: Any, path: str, reason: str, count: str | None = None) -> None:
        """Records a skipped row (its file, CSV line and reason) and, given `count`, adds it to that
        tally of dropped rows."""
        self.skipped.append({"path": path, "line": int(record.line), "reason": reason})
        if count:
            self.dropped[count] += 1


def load_nih_table(csv_path: Path) -> pd.DataFrame:
    """The CSV as strings with its `line` numbers; a DataError when it cannot be one."""
    if not csv_path.is_file():
        raise DataError(f"--csv {csv_path} does not exist")
    try:
        table = pd.read_csv(csv_path, encoding="utf-8-sig", dtype=str, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise DataError(
            f"--csv {csv_path} is not a readable CSV ({str(error).splitlines()[0]})"
        ) from error
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in ("image_path", "label") if c not in table.columns]
    if missing:
        raise DataError(
            f"--csv {csv_path} lacks column(s) {', '.join(missing)} "
            f"(expected image_path,label{_csv_hint(list(table.columns))})"
        )
    return table.assign(line=table.index + 2)  # +2: the header is line 1


def resolved(csv_path: Path, image_path: str) -> Path:
    """A path from the CSV: absolute as given, else relative to the CSV's folder."""
    path = Path(image_path.strip())
    return path if path.is_absolute() else csv_path.parent / path


def rows_with_values(
    table: pd.DataFrame, csv_path: Path, drops: CsvDrops
) -> Iterator[tuple[Any, str, str]]:
    """(record, image_path, label) of every CSV row with both values; a row missing one is
    skipped and counted."""
    for record in table.itertuples(index=False):
        image_path = record.image_path if isinstance(record.image_path, str) else ""
        findings = record.label if isinstance(record.label, str) else ""
        if image_path.strip() and findings.strip():
            yield record, image_path, findings
            continue
        blank = " and ".join(
            c for c, v in (("image_path", image_path), ("label", findings)) if not v.strip()
        )
        where = str(resolved(csv_path, image_path)) if image_path.strip() else ""
        drops.skip(record, where, f"missing {blank}", count="missing_values")


def labelled_rows(table: pd.DataFrame, csv_path: Path, drops: CsvDrops) -> list[dict[str, Any]]:
    """Rows with an image path and a PNEUMONIA or NORMAL label; the others skipped or counted."""

    def resolve(image_path: str) -> Path:
        return resolved(csv_path, image_path)

    candidates: list[dict[str, Any]] = []
    for record, image_path, findings in rows_with_values(table, csv_path, drops):
        label, unknown = nih_label(findings)
        if unknown and not label:
            drops.skip(
                record,
                str(resolve(image_path)),
                f"unknown label {unknown[0]!r} "
                "(expected NIH findings such as Pneumonia or No Finding, separated by |)",
                count="unknown_labels",
            )
            continue
        if not label:
            drops.dropped["other_findings"] += 1
            continue
        candidates.append({"record": record, "path": resolve(image_path), "label": label})
    return candidates


def first_of_each_image(
    candidates: list[dict[str, Any]], drops: CsvDrops
) -> Iterator[dict[str, Any]]:
    """The same image twice: keep the first row, or none when the labels disagree.

    A generator, so the caller's own skips interleave with these in CSV order.
    """
    by_path: dict[str, list[dict[str, Any]]] = {}
    for candidate in candidates:
        by_path.setdefault(os.path.normpath(candidate["path"]), []).append(candidate)
    for candidate in candidates:
        group = by_path[os.path.normpath(candidate["path"])]
        if len({c["label"] for c in group}) > 1:
            lines = ", ".join(str(c["record"].line) for c in group)
            drops.skip(
                candidate["record"],
                str(candidate["path"]),
                f"conflicting labels for the same image (lines {lines})",
                count="conflicting_labels",
            )
        elif candidate is not group[0]:
            drops.skip(
                candidate["record"],
                str(candidate["path"]),
                f"duplicate of line {group[0]['record'].line}",
                count="duplicates",
            )
        else:
            yield candidate


def csv_example(candidate: dict[str, Any], drops: CsvDrops) -> dict[str, Any] | None:
    """The examples row of a readable image, or None (skipped, with the reason)."""
    path, record = candidate["path"], candidate["record"]
    if path.is_dir():
        problem = "a folder, not an image file"
    elif not path.is_file() and not path.is_symlink():
        problem = "file not found"
    else:
        problem = check_image(path)
    if problem:
        drops.skip(record, str(path), problem)
        return None
    label = candidate["label"]
    return {
        "path": str(path.resolve()),
        "label": label,
        "patient_id": csv_patient(record, path, drops),
        "split": "",
        "pathogen": "normal" if label == "NORMAL" else "",
    }


def csv_patient(record: Any, path: Path, drops: CsvDrops) -> str:
    """The row's `patient_id`, else the patient in an NIH file name (00000001_000.png ->
    00000001, so follow-up images stay together), else the file's own name (counted: such
    images may share a patient the split cannot see)."""
    given = getattr(record, "patient_id", None)
    if isinstance(given, str) and given.strip():
        return given.strip()
    from_name = patient_from_file_name(path.name)
    if from_name:
        return from_name
    drops.unknown_patients += 1
    return path.stem


def no_usable_rows(csv_path: Path, drops: CsvDrops) -> DataError:
    """The one-line error for a CSV none of whose rows can be used, with the top reasons."""
    skipped = drops.skipped
    reasons = pd.Series([s["reason"].split(" (")[0] for s in skipped], dtype=str)
    common = "; ".join(f"{n} x {r}" for r, n in reasons.value_counts().head(3).items())
    example = f", e.g. line {skipped[0]['line']}: {skipped[0]['reason']}" if skipped else ""
    return DataError(
        f"--csv {csv_path} has no usable rows (Pneumonia or No Finding with an "
        f"existing, readable image; paths are relative to the CSV's folder)"
        + (
            f": {common}{example}"
            if common
            else f": {drops.dropped['other_findings']} rows with other findings only"
        )
    )


def read_nih_csv(
    csv_path: Path, balance: bool, seed: int
) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, int]]:
    """Rows from an NIH ChestX-ray14-style CSV (`image_path,label`, findings split by `|`).

    "Pneumonia" among the findings -> PNEUMONIA; exactly "No Finding" -> NORMAL; other
    findings are dropped (counted). Relative paths are relative to the CSV's folder.
    Rows with a missing value, a label that is no NIH finding, an image that does not
    exist or does not decode, or the same image as an earlier row are skipped and listed
    with their CSV line; an image listed with conflicting labels is skipped altogether.
    A CSV with no usable row is a DataError naming the commonest reasons, so the frame
    returned is never empty (--balance keeps the smaller class's count, at least one).
    """
    table = load_nih_table(csv_path)
    drops = CsvDrops()
    candidates = first_of_each_image(labelled_rows(table, csv_path, drops), drops)
    rows = [row for row in (csv_example(c, drops) for c in candidates) if row is not None]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if frame.empty:
        raise no_usable_rows(csv_path, drops)
    if drops.unknown_patients:
        logging.warning(
            "example_gen: %d of %d images in %s have neither a patient_id value nor an NIH "
            "file name (00000001_000.png); each is taken as its own patient, so one "
            "patient's images could sit on both sides of a split",
            drops.unknown_patients,
            len(frame),
            csv_path,
        )
    if balance:
        smallest = int(frame["label"].value_counts().min())
        keep = frame.groupby("label").sample(n=smallest, random_state=seed).index
        frame = frame.loc[keep].sort_values("path").reset_index(drop=True)
    return frame, drops.skipped, drops.dropped


def multilabel_rows(table: pd.DataFrame, csv_path: Path, drops: CsvDrops) -> list[dict[str, Any]]:
    """Rows with an image path and their findings as one canonical string ("Effusion|Mass",
    "No Finding"); rows missing a value are skipped. A label that is no NIH finding is a
    DataError naming its line: a multi-label target cannot drop part of a row's label."""
    candidates: list[dict[str, Any]] = []
    for record, image_path, findings in rows_with_values(table, csv_path, drops):
        try:
            label = finding_string(multilabel_findings(findings))
        except DataError as error:
            raise DataError(f"--csv {csv_path} line {record.line}: {error}") from None
        candidates.append(
            {"record": record, "path": resolved(csv_path, image_path), "label": label}
        )
    return candidates


def lesion_mask_cell(record: Any, csv_path: Path) -> str:
    """A row's `lesion_masks` (Finding:path|...) with absolute paths; "" without one."""
    value = getattr(record, "lesion_masks", None)
    if not isinstance(value, str) or not value.strip():
        return ""
    try:
        masks = parse_lesion_masks(value)
    except DataError as error:
        raise DataError(f"--csv {csv_path} line {record.line}: {error}") from None
    return "|".join(
        f"{name}:{resolved(csv_path, path).resolve()}" for name, path in sorted(masks.items())
    )


def read_multilabel_csv(
    csv_path: Path,
) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, int]]:
    """Rows of an NIH-style CSV for --task multilabel: every row with a readable image,
    labelled by all its findings (`multilabel_rows`), missing values, unreadable images
    and repeated images skipped and listed as for the binary task; an optional
    `lesion_masks` column (synthetic phantoms) kept as examples.csv's `lesion_masks`."""
    table = load_nih_table(csv_path)
    drops = CsvDrops()
    candidates = first_of_each_image(multilabel_rows(table, csv_path, drops), drops)
    rows = []
    for candidate in candidates:
        row = csv_example(candidate, drops)
        if row is not None:
            row["pathogen"] = ""
            row["lesion_masks"] = lesion_mask_cell(candidate["record"], csv_path)
            rows.append(row)
    frame = pd.DataFrame(rows, columns=[*COLUMNS, "lesion_masks"])
    if frame.empty:
        raise no_usable_rows(csv_path, drops)
    if not (frame["lesion_masks"] != "").any():
        frame = frame.drop(columns="lesion_masks")
    return frame, drops.skipped, drops.dropped


def assign_multilabel_splits(
    frame: pd.DataFrame, val_fraction: float, test_fraction: float, seed: int
) -> pd.DataFrame:
    """assign_csv_splits by patient, stratified on "No Finding" against any finding: the
    combinations of findings are too many and too rare to stratify on."""
    coarse = np.where(frame["label"] == NO_FINDING, NO_FINDING, "finding")
    split = assign_csv_splits(frame.assign(label=coarse), val_fraction, test_fraction, seed)
    return frame.reset_index(drop=True).assign(split=split["split"].to_numpy())


def read_split_lists(folder: Path) -> dict[str, str]:
    """{file name: "train" or "test"} from NIH's train_val_list.txt and test_list.txt."""
    if not folder.is_dir():
        raise DataError(f"--split_lists {folder} is not a folder")
    listed: dict[str, str] = {}
    for file_name, split in SPLIT_LIST_FILES.items():
        path = folder / file_name
        if not path.is_file():
            raise DataError(f"--split_lists {folder} has no {file_name} (NIH's official split)")
        for name in path.read_text(encoding="utf-8").split():
            if listed.get(name, split) != split:
                raise DataError(f"--split_lists {folder}: {name} is in both lists")
            listed[name] = split
    return listed


def assign_split_lists(
    frame: pd.DataFrame, folder: Path, val_fraction: float, seed: int
) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """NIH's official split: test_list.txt's images are test, train_val_list.txt's are
    train with `val_fraction` of their patients held out as val (stratified as
    `assign_multilabel_splits`); an image in neither list is skipped with the reason."""
    listed = read_split_lists(folder)
    names = frame["path"].map(lambda p: Path(p).name)
    split = names.map(listed).fillna("")
    skipped = [
        {"path": p, "reason": f"in neither list of --split_lists {folder}"}
        for p in frame.loc[split == "", "path"]
    ]
    frame = frame.assign(split=split)[split != ""].reset_index(drop=True)
    train = frame.index[frame["split"] == "train"]
    if not len(train) or len(train) == len(frame):
        raise DataError(
            f"--split_lists {folder} leaves no {'train' if not len(train) else 'test'} image"
        )
    coarse = frame.loc[train].assign(
        label=np.where(frame.loc[train, "label"] == NO_FINDING, NO_FINDING, "finding")
    )
    held = split_by_patient(coarse, val_fraction, seed)
    frame.loc[train[held], "split"] = "val"
    return frame, skipped


def finding_counts(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Images with each finding per split (an image counts once for each of its findings)."""
    counts: dict[str, dict[str, int]] = {}
    for split, group in frame.groupby("split"):
        found = pd.Series(
            [
                name
                for label in group["label"]
                for name in multilabel_findings(label) or (NO_FINDING,)
            ]
        )
        counts[str(split)] = {str(k): int(v) for k, v in found.value_counts().sort_index().items()}
    return counts


def check_multilabel_splits(frame: pd.DataFrame, source: str) -> None:
    """Training needs some finding to learn: a train split of "No Finding" only is a
    DataError (every other split may lack any one finding; the Evaluator says so)."""
    train = frame.loc[frame["split"] == "train", "label"]
    if len(train) and (train == NO_FINDING).all():
        raise DataError(f"the train split has no image with a finding ({source})")


def assign_csv_splits(
    frame: pd.DataFrame, val_fraction: float, test_fraction: float, seed: int
) -> pd.DataFrame:
    """Stratified train/val/test, grouped by patient so no patient crosses a split."""
    frame = frame.reset_index(drop=True)
    split = pd.Series("train", index=frame.index)
    test = split_by_patient(frame, test_fraction, seed + 1)
    split[test] = "test"
    rest = frame.index[~test]
    val = split_by_patient(frame.loc[rest], val_fraction / (1.0 - test_fraction), seed)
    split[rest[val]] = "val"
    return frame.assign(split=split)


def export_tfds_builder(name: str, out_dir: Path, progress: bool = False) -> pd.DataFrame:
    """Prepares TFDS builder `name` and writes its images (and masks) as PNG files."""
    import tensorflow_datasets as tfds

    import datasets.synthetic_cxr  # noqa: F401  (registers the builder)

    if progress:  # TFDS' own bars while it generates and writes the examples
        tfds.enable_progress_bar()
    else:
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
            for target, pixels in (
                (image_path, example["image"][..., 0]),
                (mask_path, example["mask"][..., 0] * 255),
            ):
                with atomic_path(target) as tmp:
                    Image.fromarray(pixels).save(tmp, format="PNG")
            rows.append(
                {
                    "path": str(image_path.resolve()),
                    "label": label,
                    "patient_id": example["patient_id"].decode(),
                    "split": split,
                    "pathogen": "normal" if label == "NORMAL" else "",
                    "mask_path": str(mask_path.resolve()),
                }
            )
    return pd.DataFrame(rows).sort_values(["split", "path"]).reset_index(drop=True)


def remove_cross_split_duplicates(
    frame: pd.DataFrame, progress: bool = False
) -> tuple[pd.DataFrame, list[dict[str, str]], dict[str, Any]]:
    """Drops images whose bytes already appear in an earlier split (train < val < test).

    The same picture under another name (or another patient id) in train and test would
    let the model be scored on an image it was trained on: the copy in the later split
    is removed, so training keeps all its data and evaluation stays on unseen images.
    Identical files within one split (Kaggle repeats some images of one patient) are
    counted, not removed.
    """
    if frame.empty:
        return frame, [], {"removed_across_splits": 0, "within_split": {}}
    rank = frame["split"].map(SPLIT_RANK).fillna(3)
    digests = [
        file_sha256(path)
        for path in tqdm(
            frame["path"],
            desc="hashing for duplicates",
            unit="file",
            disable=not progress,
            leave=False,
        )
    ]
    order = frame[["path", "split"]].assign(sha256=digests, rank=rank)
    order = order.sort_values(["rank", "path"])
    kept = order.drop_duplicates("sha256").set_index("sha256")
    repeats = order[order.duplicated("sha256")]
    across = repeats[repeats["rank"] > repeats["sha256"].map(kept["rank"])]
    within = repeats.drop(index=across.index)
    skipped = [
        {
            "path": path,
            "reason": f"same image as {kept.at[digest, 'path']} in {kept.at[digest, 'split']} "
            f"(leakage): removed from {split}",
        }
        for path, split, digest in zip(across["path"], across["split"], across["sha256"])
    ]
    report = {
        "removed_across_splits": len(across),
        "within_split": {str(k): int(v) for k, v in within["split"].value_counts().items()},
    }
    return frame.drop(index=across.index), skipped, report


def remove_cross_split_patients(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Drops val and test images of patients who also have images in train.

    Only where a patient id names the same person in every split: an NIH-style CSV's
    `patient_id` column or NIH file names (00000013_005.png), and train/'s file names in
    the splits held out of it. Those splits are cut by patient, so this is a guard that
    finds nothing unless a split was made some other way; a Kaggle val/ or test/ folder's
    ids carry the folder (`scoped_to_folder`) and never meet train's. Like a byte
    duplicate, such an image leaves val/test and training keeps all its data; listed in
    the returned report (stats.json `cross_split_patients`) with one warning line.
    """
    train_patients = set(frame.loc[frame["split"] == "train", "patient_id"])
    shared = frame["split"].isin(["val", "test"]) & frame["patient_id"].isin(train_patients)
    leaked = frame[shared]
    report = {
        "removed": int(len(leaked)),
        "by_split": {str(k): int(v) for k, v in leaked["split"].value_counts().items()},
        "patients": sorted(set(leaked["patient_id"])),
        "images": [
            {"path": path, "patient_id": patient, "removed_from": split}
            for path, patient, split in zip(leaked["path"], leaked["patient_id"], leaked["split"])
        ],
    }
    if len(leaked):
        logging.warning(
            "example_gen: removed %d val/test image(s) of %d patient(s) who also have images "
            "in train (listed in stats.json cross_split_patients)",
            len(leaked),
            len(report["patients"]),
        )
    return frame[~shared], report


def closest_earlier_images(
    frame: pd.DataFrame, signatures: np.ndarray, hashed: np.ndarray
) -> pd.DataFrame:
    """For each val/test image within phash.MAX_DISTANCE of an image of an
    earlier split (train < val < test), that image: columns query, match, distance
    (positions in `frame`)."""
    rank = frame["split"].map(SPLIT_RANK).fillna(3).to_numpy()
    found = []
    for split in ("val", "test"):
        queries = np.flatnonzero((rank == SPLIT_RANK[split]) & hashed)
        references = np.flatnonzero((rank < SPLIT_RANK[split]) & hashed)
        if len(queries) and len(references):
            hits = phash.close_pairs(signatures[queries], signatures[references])
            found.append(
                pd.DataFrame(
                    {
                        "query": queries[hits[:, 0]],
                        "match": references[hits[:, 1]],
                        "distance": hits[:, 2],
                    }
                )
            )
    if not found:
        return pd.DataFrame({"query": [], "match": [], "distance": []}, dtype=int)
    pairs = pd.concat(found).sort_values(["query", "distance", "match"])
    return pairs.drop_duplicates("query").reset_index(drop=True)


def find_near_duplicates(
    frame: pd.DataFrame, action: str, progress: bool = False
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Val/test images that look like an earlier split's image, reported or removed.

    The same radiograph exported twice (resized, re-encoded, slightly cropped or with
    another exposure) has other bytes, so the byte check misses it; a perceptual hash
    (components/near_duplicates.py) does not. Every image is decoded once at 64 px and
    hashed; hashes are compared in bulk. `action` "report" keeps the images (a match is
    strong evidence, not proof, and the user's test split stays whole), "remove" drops
    them from val/test like a byte duplicate. One warning line either way.
    """
    frame = frame.reset_index(drop=True)
    stack, hashed = phash.thumbnails(frame["path"].tolist(), progress)
    pairs = closest_earlier_images(frame, phash.signatures(stack), hashed)
    query, match = frame.loc[pairs["query"]], frame.loc[pairs["match"]]
    report: dict[str, Any] = {
        "checked": True,
        "action": action,
        "rule": f"perceptual hash (pHash, {phash.BITS} bits, with 2% and 4% crops) "
        f"within {phash.MAX_DISTANCE} bits of an image of an earlier split",
        "max_distance": phash.MAX_DISTANCE,
        "bits": phash.BITS,
        "not_hashed": int((~hashed).sum()),
        "found": int(len(pairs)),
        "removed": int(len(pairs)) if action == "remove" else 0,
        "by_split": {str(k): int(v) for k, v in query["split"].value_counts().items()},
        "pairs": [
            {
                "path": path,
                "split": split,
                "closest": closest,
                "closest_split": closest_split,
                "distance": int(distance),
            }
            for path, split, closest, closest_split, distance in zip(
                query["path"], query["split"], match["path"], match["split"], pairs["distance"]
            )
        ],
    }
    if len(pairs):
        fate = (
            "removed from val/test (--near_duplicates report keeps them)"
            if action == "remove"
            else "kept (--near_duplicates remove drops them)"
        )
        logging.warning(
            "example_gen: %d val/test image(s) look like a resized, re-encoded, cropped or "
            "re-exposed copy of an image of an earlier split (perceptual hash within %d of "
            "%d bits): %s; pairs in stats.json near_duplicates",
            len(pairs),
            phash.MAX_DISTANCE,
            phash.BITS,
            fate,
        )
    if action == "remove":
        frame = frame.drop(index=pairs["query"])
    return frame, report


def leakage_summary(
    duplicates: dict[str, Any], near: dict[str, Any], patients: dict[str, Any], source: str
) -> dict[str, Any]:
    """What the leakage checks removed, why and how many, in plain sentences (stats.json
    and the model card)."""
    lines = [
        f"byte-identical copies: {duplicates['removed_across_splits']} val/test image(s) "
        "with the same bytes as an image of an earlier split, removed",
    ]
    if near.get("checked"):
        fate = "removed" if near["action"] == "remove" else "kept"
        lines.append(
            f"near-duplicates: {near['found']} val/test image(s) within "
            f"{near['max_distance']} of {near['bits']} perceptual-hash bits of an image of "
            f"an earlier split, {fate} (--near_duplicates {near['action']})"
        )
    else:
        lines.append(f"near-duplicates: not checked ({near['reason']})")
    if source.startswith("kaggle folder"):
        lines.append(
            "patients: validation and test held out of train/ are cut by the file names' "
            "patient ids; a given val/ or test/ folder is never pruned by a file-name "
            "number (Kaggle's personN numbers restart in each split)"
        )
    lines.append(
        f"patients in two splits: {patients['removed']} val/test image(s) of "
        f"{len(patients['patients'])} training patient(s), removed"
    )
    removed = duplicates["removed_across_splits"] + near.get("removed", 0) + patients["removed"]
    return {"removed": int(removed), "summary": lines}


def summarize(frame: pd.DataFrame) -> dict[str, Any]:
    """Counts per split and class/pathogen, patients per split and cross-split overlap."""
    counts = {
        split: {str(k): int(v) for k, v in group["label"].value_counts().sort_index().items()}
        for split, group in frame.groupby("split")
    }
    pathogens = {
        split: {
            str(k or "unknown"): int(v)
            for k, v in group["pathogen"].value_counts().sort_index().items()
        }
        for split, group in frame.groupby("split")
    }
    patients = {split: set(group["patient_id"]) for split, group in frame.groupby("split")}
    overlap = {}
    names = sorted(patients)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            shared = sorted(patients[first] & patients[second])
            overlap[f"{first}-{second}"] = {"patients": len(shared), "examples": shared[:20]}
    return {
        "counts": counts,
        "pathogens": pathogens,
        "patients": {s: len(p) for s, p in patients.items()},
        "patient_overlap": overlap,
    }


def read_source(
    out_dir: Path,
    data_dir: str | None,
    csv: str | None,
    external: str | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    balance: bool,
    progress: bool,
) -> tuple[str, pd.DataFrame, list[dict[str, str]], dict[str, Any]]:
    """The examples table from the one source given, with its splits assigned: (what the
    source is, in words; the table; the files skipped and why; the source's own notes)."""
    skipped: list[dict[str, str]] = []
    extra: dict[str, Any] = {}
    if data_dir and external:
        source = f"folder {data_dir} ({'every image' if external == 'all' else 'its test images'})"
        frame, skipped = scan_external_folder(Path(data_dir), external, progress)
    elif data_dir:
        source = f"kaggle folder {data_dir}"
        if Path(data_dir).is_dir() and not (Path(data_dir) / "train").is_dir():
            raise DataError(f"no train/ folder in --data_dir {data_dir}")
        frame, skipped = scan_kaggle_folder(Path(data_dir), progress)
        if frame.empty:
            raise DataError(f"no readable images under {data_dir}")
        frame, extra["notes"] = assign_kaggle_splits(frame, val_fraction, test_fraction, seed)
    elif csv:
        source = f"NIH-style CSV {csv}"
        frame, skipped, extra["dropped_rows"] = read_nih_csv(Path(csv), balance, seed)
        frame = (
            frame.assign(split="test")
            if external
            else assign_csv_splits(frame, val_fraction, test_fraction, seed)
        )
    else:
        source = f"TFDS builder {SYNTHETIC_BUILDER}"
        frame = export_tfds_builder(SYNTHETIC_BUILDER, out_dir, progress)
    return source, frame, skipped, extra


def read_multilabel_source(
    csv: Path,
    external: str | None,
    split_lists: str | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> tuple[str, pd.DataFrame, list[dict[str, str]], dict[str, Any]]:
    """read_source for --task multilabel: the CSV's rows with their findings, every one a
    test image (`external`), split by NIH's lists (`split_lists`) or by patient."""
    source = f"NIH-style CSV {csv} (multi-label)"
    frame, skipped, dropped = read_multilabel_csv(csv)
    if external:
        frame = frame.assign(split="test")
    elif split_lists:
        frame, unlisted = assign_split_lists(frame, Path(split_lists), val_fraction, seed)
        skipped += unlisted
    else:
        frame = assign_multilabel_splits(frame, val_fraction, test_fraction, seed)
    return source, frame, skipped, {"dropped_rows": dropped}


def drop_unknown_pathogens(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """three_class: the images whose file name names no pathogen leave, listed as skipped."""
    unknown = frame["pathogen"] == ""
    skipped = [
        {
            "path": p,
            "reason": "pathogen unknown (three_class needs bacteria/virus in the file name)",
        }
        for p in frame.loc[unknown, "path"]
    ]
    return frame[~unknown], skipped


def remove_leakage(
    frame: pd.DataFrame,
    source: str,
    external: str | None,
    generated: bool,
    near_duplicates: str,
    progress: bool,
) -> tuple[pd.DataFrame, list[dict[str, str]], dict[str, Any]]:
    """Byte copies, near-duplicates (unless every image is a test image or generated) and
    patients across splits: (the table without them, the files removed, stats.json's keys)."""
    extra: dict[str, Any] = {}
    frame, leaked, extra["duplicate_images"] = remove_cross_split_duplicates(frame, progress)
    if external:
        extra["near_duplicates"] = {"checked": False, "reason": "every image is a test image"}
    elif generated:
        # Each generated phantom comes from its own seed: no image can be re-used, and
        # phantoms drawn from one template are alike enough to match by chance.
        extra["near_duplicates"] = {"checked": False, "reason": f"images generated by {source}"}
    else:
        frame, extra["near_duplicates"] = find_near_duplicates(frame, near_duplicates, progress)
    frame, extra["cross_split_patients"] = remove_cross_split_patients(frame)
    extra["leakage"] = leakage_summary(
        extra["duplicate_images"], extra["near_duplicates"], extra["cross_split_patients"], source
    )
    return frame, leaked, extra


def check_splits(frame: pd.DataFrame, splits: Sequence[str], labelled: bool, source: str) -> None:
    """A DataError for an empty split, or (labelled data) a split without both classes."""
    for split in splits:
        if not (frame["split"] == split).any():
            raise DataError(f"the {split} split is empty ({source})")
        if not labelled:
            continue  # an unlabelled folder: scores and shift, no metrics
        # Without both classes a split can neither train a classifier nor give an AUC.
        for label in CLASS_FOLDERS:
            if not ((frame["split"] == split) & (frame["label"] == label)).any():
                raise DataError(
                    f"the {split} split has no {label} images ({source}); "
                    "every split needs both classes"
                )


def write_examples(
    out_dir: Path,
    frame: pd.DataFrame,
    source: str,
    task: str,
    extra: dict[str, Any],
    skipped: list[dict[str, str]],
) -> dict[str, Any]:
    """examples.csv (sorted) and stats.json, the skipped files logged; returns the
    component's outputs."""
    frame = frame.sort_values(["split", "label", "path"]).reset_index(drop=True)
    write_csv(out_dir / "examples.csv", frame)
    stats = {
        "source": source,
        "task": task,
        **summarize(frame),
        **extra,
        "skipped": skipped,
        "skipped_count": len(skipped),
    }
    write_json(out_dir / "stats.json", stats)
    for item in skipped[:20]:
        where = f"{item['path']} (line {item['line']})" if "line" in item else item["path"]
        logging.warning("skipped %s: %s", where, item["reason"])
    logging.info("example_gen: %d examples from %s (%d skipped)", len(frame), source, len(skipped))
    return {"examples": "examples.csv", "n_examples": int(len(frame)), "skipped": len(skipped)}


def run(
    out_dir: Path,
    *,
    data_dir: str | None = None,
    csv: str | None = None,
    task: str = "binary",
    seed: int = 42,
    val_fraction: float = VAL_FRACTION,
    test_fraction: float = TEST_FRACTION,
    balance: bool = False,
    external: str | None = None,
    near_duplicates: str = "report",
    calibration_dir: str | None = None,
    split_lists: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """The ExampleGen component: writes examples.csv and stats.json into `out_dir`.

    `task` "multilabel" (with `csv`): every row with its findings ("No Finding": none),
    split by patient (`split_lists`: NIH's train_val_list.txt and test_list.txt decide
    test; val is held out of train_val by patient).

    `external` ("test" or "all") is external validation (pipelines.evaluate at a frozen
    threshold): every image of the data is a test image, and no train/ is needed; a
    folder of images without class folders is read unlabelled (empty labels).
    `calibration_dir` (external only): a site's labelled images, as the val split.
    `near_duplicates` ("report" or "remove"): what happens to val/test images that look
    like an earlier split's image (`find_near_duplicates`).
    """
    if near_duplicates not in NEAR_DUPLICATE_ACTIONS:
        raise DataError(
            f"--near_duplicates {near_duplicates!r}: expected one of "
            + ", ".join(NEAR_DUPLICATE_ACTIONS)
        )
    if csv and task == "multilabel":
        source, frame, skipped, extra = read_multilabel_source(
            Path(csv), external, split_lists, val_fraction, test_fraction, seed
        )
    else:
        source, frame, skipped, extra = read_source(
            out_dir, data_dir, csv, external, val_fraction, test_fraction, seed, balance, progress
        )
    if external and calibration_dir:
        frame, lost, extra["calibration"] = add_calibration_images(
            frame, Path(calibration_dir), progress
        )
        skipped += lost
    labelled = (frame["label"] != "").all()
    if task == "three_class" and labelled:
        frame, unknown = drop_unknown_pathogens(frame)
        skipped += unknown
    generated = not (data_dir or csv)
    frame, leaked, leakage = remove_leakage(
        frame, source, external, generated, near_duplicates, progress
    )
    skipped += leaked
    extra.update(leakage)
    checked = ("val", "test") if calibration_dir else ("test",)
    # A multi-label split needs no class of its own; training needs some finding.
    check_splits(frame, checked if external else SPLITS, labelled and task != "multilabel", source)
    if task == "multilabel":
        check_multilabel_splits(frame, source)
        extra["findings"] = finding_counts(frame)
    return write_examples(out_dir, frame, source, task, extra, skipped)
