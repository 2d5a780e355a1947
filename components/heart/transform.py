"""Transform for the heart table: a scikit-learn preprocessor fitted on train rows only.

Zeros in Cholesterol and RestingBP mean "not measured": they become NaN, are imputed
with the train median, and get a 0/1 indicator column (missingness itself is
informative here: most unmeasured cholesterol rows come from one hospital with a high
disease rate). Numerics are standardized, categoricals one-hot encoded with the schema's
fixed categories, so every fold has the same columns in the same order.

One preprocessor is fitted per partition ("holdout", and "cv_k" per fold), each on that
partition's train rows only, so no statistic of val or test rows reaches the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from components.artifacts import write_csv, write_json
from components.heart.partitions import HOLDOUT, save_preprocessor
from datasets.heart_failure import schema


def build_preprocessor() -> ColumnTransformer:
    """An unfitted ColumnTransformer: raw schema columns in, model-ready floats out."""
    zeros = FunctionTransformer(schema.zeros_as_missing, feature_names_out="one-to-one")
    numeric = Pipeline(
        [
            ("zeros_as_missing", zeros),
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
        ]
    )
    # features="all": the indicator columns exist even when a train split has no zeros.
    missing = Pipeline(
        [("zeros_as_missing", zeros), ("indicator", MissingIndicator(features="all"))]
    )
    categorical = OneHotEncoder(
        categories=[list(v) for v in schema.CATEGORICAL.values()],
        handle_unknown="ignore",
        sparse_output=False,
    )
    return ColumnTransformer(
        [
            ("numeric", numeric, list(schema.NUMERIC)),
            ("missing", missing, list(schema.ZERO_MEANS_MISSING)),
            ("binary", SimpleImputer(strategy="most_frequent"), list(schema.BINARY)),
            ("categorical", categorical, list(schema.CATEGORICAL)),
        ],
        verbose_feature_names_out=False,
    )


def column_names(preprocessor: ColumnTransformer) -> list[str]:
    """Output column names, with indicators named `<feature>_missing`."""
    return [
        f"{name.removeprefix('missingindicator_')}_missing"
        if name.startswith("missingindicator_")
        else str(name)
        for name in preprocessor.get_feature_names_out()
    ]


def feature_groups(columns: list[str]) -> dict[str, list[str]]:
    """Original feature -> its output columns (a one-hot block, a value + its indicator)."""
    groups: dict[str, list[str]] = {}
    for feature in schema.FEATURES:
        groups[feature] = [
            c
            for c in columns
            if c == feature
            or c == f"{feature}_missing"
            or (feature in schema.CATEGORICAL and c.startswith(f"{feature}_"))
        ]
    return groups


def fit_statistics(preprocessor: ColumnTransformer, n_train: int) -> dict[str, Any]:
    """What the fit learned, written out so a reader can check it came from train rows."""
    numeric = preprocessor.named_transformers_["numeric"]
    return {
        "n_train": n_train,
        "median": dict(zip(schema.NUMERIC, numeric.named_steps["impute"].statistics_.tolist())),
        "mean": dict(zip(schema.NUMERIC, numeric.named_steps["scale"].mean_.tolist())),
        "scale": dict(zip(schema.NUMERIC, numeric.named_steps["scale"].scale_.tolist())),
        "most_frequent": dict(
            zip(schema.BINARY, preprocessor.named_transformers_["binary"].statistics_.tolist())
        ),
    }


def fit_partition(
    examples: pd.DataFrame, split: pd.Series
) -> tuple[ColumnTransformer, pd.DataFrame]:
    """Fits on rows where `split == "train"`; transforms every row."""
    features = examples[list(schema.FEATURES)]
    preprocessor = build_preprocessor().fit(features[split.to_numpy() == "train"])
    values = preprocessor.transform(features).astype(np.float32)
    transformed = pd.DataFrame(values, columns=column_names(preprocessor), index=examples.index)
    ids = pd.DataFrame(
        {"patient_id": examples["patient_id"], "label": examples["label"], "split": split}
    )
    return preprocessor, pd.concat([ids, transformed], axis=1)


def partition_names(examples: pd.DataFrame) -> list[str]:
    """The holdout, then every `cv_<k>` column of examples.csv, in fold order."""
    return [HOLDOUT] + sorted(
        (c for c in examples.columns if c.startswith("cv_")), key=lambda c: int(c.split("_")[1])
    )


def split_column(partition: str) -> str:
    """The examples.csv column holding a partition's split: `split` for the holdout, `cv_<k>` for
    fold k."""
    return "split" if partition == HOLDOUT else partition


def run(out_dir: Path, *, examples: Path) -> dict[str, Any]:
    """Fits one preprocessor per partition; writes each with its transformed rows."""
    table = pd.read_csv(examples / "examples.csv")
    names = partition_names(table)
    columns: list[str] = []
    for name in names:
        preprocessor, transformed = fit_partition(table, table[split_column(name)])
        columns = column_names(preprocessor)
        folder = out_dir / name
        save_preprocessor(preprocessor, folder)
        write_csv(folder / "transformed.csv", transformed)
        write_json(
            folder / "fit.json",
            fit_statistics(preprocessor, int((table[split_column(name)] == "train").sum())),
        )
    write_json(
        out_dir / "features.json",
        {"columns": columns, "groups": feature_groups(columns), "partitions": names},
    )
    return {"partitions": names, "columns": len(columns)}
