"""The Heart Failure Prediction table: its columns, their valid values, and a strict reader.

One place says what a valid table looks like, so the TFDS builder and the pipeline's
ExampleGen reject the same inputs with the same one-line message (a DataError naming
the file, column and line) instead of training on garbage.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from components.errors import DataError

TARGET = "HeartDisease"
CLASS_NAMES = ("no_heart_disease", "heart_disease")

# Measured quantities; zeros in the two listed below mean "not measured" (172 rows of
# Cholesterol and one of RestingBP in the Kaggle table), not a physiological zero.
NUMERIC = ("Age", "RestingBP", "Cholesterol", "MaxHR", "Oldpeak")
ZERO_MEANS_MISSING = ("RestingBP", "Cholesterol")
BINARY = ("FastingBS",)
CATEGORICAL: Mapping[str, tuple[str, ...]] = {
    "Sex": ("M", "F"),
    "ChestPainType": ("ASY", "ATA", "NAP", "TA"),
    "RestingECG": ("Normal", "ST", "LVH"),
    "ExerciseAngina": ("N", "Y"),
    "ST_Slope": ("Up", "Flat", "Down"),
}
FEATURES = (
    "Age",
    "Sex",
    "ChestPainType",
    "RestingBP",
    "Cholesterol",
    "FastingBS",
    "RestingECG",
    "MaxHR",
    "ExerciseAngina",
    "Oldpeak",
    "ST_Slope",
)

# Generous physiological bounds: outside them a value is a unit or entry error.
VALID_RANGE: Mapping[str, tuple[float, float]] = {
    "Age": (1, 120),
    "RestingBP": (0, 300),
    "Cholesterol": (0, 1500),
    "MaxHR": (20, 250),
    "Oldpeak": (-10, 10),
    "FastingBS": (0, 1),
}


@dataclasses.dataclass(frozen=True)
class Table:
    """A validated table: features + integer label, and what reading it dropped."""

    frame: pd.DataFrame  # FEATURES + TARGET + "line" (the row's line in the CSV)
    rows_read: int
    dropped_missing_target: int
    dropped_duplicates: int = 0
    # Each dropped row: {"line": n, "reason": "..."} (the CSV's line numbers, header = 1).
    dropped: tuple[dict, ...] = ()


def _first_bad(column: pd.Series, bad: pd.Series) -> str:
    index = bad[bad].index[0]
    return f"{column.loc[index]!r} (line {index + 2})"  # +2: header line, 1-based


def _numeric(raw: pd.Series, name: str, source: str) -> pd.Series:
    text = raw.astype("string").str.strip()
    values = pd.to_numeric(text, errors="coerce")
    not_numbers = text.notna() & (text != "") & values.isna()
    if not_numbers.any():
        raise DataError(
            f"{source}: column '{name}' has non-numeric value {_first_bad(raw, not_numbers)}"
        )
    low, high = VALID_RANGE[name]
    outside = values.notna() & ((values < low) | (values > high) | ~np.isfinite(values))
    if outside.any():
        raise DataError(
            f"{source}: column '{name}' has impossible value "
            f"{_first_bad(raw, outside)}; expected {low}..{high}"
        )
    if name in BINARY:
        not_binary = values.notna() & ~values.isin([0, 1])
        if not_binary.any():
            raise DataError(
                f"{source}: column '{name}' must be 0 or 1, got {_first_bad(raw, not_binary)}"
            )
    return values.astype(float)


def _categorical(raw: pd.Series, name: str, source: str) -> pd.Series:
    text = raw.astype("string").str.strip()
    if text.isna().any():
        raise DataError(
            f"{source}: column '{name}' is empty on line {text[text.isna()].index[0] + 2}"
        )
    allowed = CATEGORICAL[name]
    unknown = ~text.isin(allowed)
    if unknown.any():
        raise DataError(
            f"{source}: column '{name}' has unknown value "
            f"{_first_bad(raw, unknown)}; expected one of {', '.join(allowed)}"
        )
    return text.astype(str)


def _target(raw: pd.Series, source: str) -> pd.Series:
    text = raw.astype("string").str.strip().replace("", pd.NA)
    values = pd.to_numeric(text, errors="coerce")
    bad = text.notna() & ~values.isin([0, 1])
    if bad.any():
        raise DataError(
            f"{source}: target column '{TARGET}' must be 0 or 1, got {_first_bad(raw, bad)}"
        )
    return values


def validate(raw: pd.DataFrame, source: str) -> Table:
    """Checks columns and values; drops (and counts) rows whose target is missing.

    `raw` holds the cells as read (text or NaN) with the CSV's row order as its index,
    so messages can name the line.
    """
    raw = raw.rename(columns=lambda c: str(c).strip().removeprefix("\ufeff"))
    if TARGET not in raw.columns:
        hint = ""
        if len(raw.columns) == 1 and any(sep in raw.columns[0] for sep in (";", "\t")):
            hint = " (the header reads as one column: separate columns with commas)"
        raise DataError(f"{source}: missing target column '{TARGET}'{hint}")
    missing = [c for c in FEATURES if c not in raw.columns]
    if missing:
        raise DataError(f"{source}: missing feature column(s) {', '.join(missing)}")
    target = _target(raw[TARGET], source)
    labelled = raw[target.notna()]  # rows without a target carry nothing to learn from
    if labelled.empty:
        raise DataError(f"{source}: no rows with a value in '{TARGET}'")
    frame = pd.DataFrame(index=labelled.index)
    for name in FEATURES:
        if name in CATEGORICAL:
            frame[name] = _categorical(labelled[name], name, source)
        else:
            frame[name] = _numeric(labelled[name], name, source)
    frame[TARGET] = target[target.notna()].astype(int)
    frame["line"] = labelled.index + 2
    dropped = [
        {"line": int(index) + 2, "reason": f"missing target '{TARGET}'"}
        for index in target.index[target.isna()]
    ]
    # One row is one patient: an identical row is that patient again, who could otherwise
    # sit in train and test at once. Keep the first.
    columns = [*FEATURES, TARGET]
    repeated = frame.duplicated(subset=columns, keep="first")
    if repeated.any():
        first_line = frame.groupby(columns, dropna=False, sort=False)["line"].transform("first")
        dropped += [
            {"line": int(line), "reason": f"duplicate of line {int(original)}"}
            for line, original in zip(frame.loc[repeated, "line"], first_line[repeated])
        ]
        frame = frame[~repeated]
    return Table(
        frame.reset_index(drop=True),
        rows_read=len(raw),
        dropped_missing_target=int(target.isna().sum()),
        dropped_duplicates=int(repeated.sum()),
        dropped=tuple(sorted(dropped, key=lambda item: item["line"])),
    )


def read_csv(path: str | Path) -> Table:
    """Reads and validates the CSV at `path` (cells as text, so pandas guesses no types)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: CSV file not found")
    try:
        raw = pd.read_csv(path, dtype=str, skipinitialspace=True)  # "", NA -> NaN
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable CSV ({str(error).splitlines()[0]})") from error
    return validate(raw, str(path))


def zeros_as_missing(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with the "not measured" zeros (in the columns present) replaced by NaN."""
    frame = frame.copy()
    for name in ZERO_MEANS_MISSING:
        if name in frame.columns:
            frame[name] = frame[name].mask(frame[name] == 0)
    return frame
