"""The heart Transform's partitions, read back: the one reader the later heart steps use.

`transform/features.json` names the model-ready columns, their grouping by original
feature and the partitions ("holdout", and "cv_k" per fold); `transform/<partition>/`
holds transformed.csv (ID_COLUMNS + columns) and the preprocessor fitted on that
partition's train rows (preprocessor.skops: loaded with an explicit trusted list, never
unpickled; components/sklearn_files).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf
from sklearn.compose import ColumnTransformer

from components import sklearn_files
from components.artifacts import read_json
from datasets.heart_failure import schema

HOLDOUT = "holdout"
PREPROCESSOR = "preprocessor" + sklearn_files.SUFFIX
ID_COLUMNS = ("patient_id", "label", "split")


@dataclasses.dataclass(frozen=True)
class Partition:
    """A partition's transformed rows, ready for a model."""

    name: str
    frame: pd.DataFrame  # ID_COLUMNS + columns
    columns: list[str]
    groups: dict[str, list[str]]
    preprocessor: ColumnTransformer

    def x(self, split: str) -> np.ndarray:
        """The split's feature columns, float32 (rows, columns), in the Transform's column order."""
        return self.frame.loc[self.frame["split"] == split, self.columns].to_numpy(np.float32)

    def y(self, split: str) -> np.ndarray:
        """The split's labels, 0/1 int64 (1: heart disease)."""
        return self.frame.loc[self.frame["split"] == split, "label"].to_numpy(np.int64)

    def ids(self, split: str) -> np.ndarray:
        """The split's patient ids (the CSV line of each row)."""
        return self.frame.loc[self.frame["split"] == split, "patient_id"].to_numpy()


def input_fn(
    x: np.ndarray, y: np.ndarray, batch_size: int, shuffle_seed: int | None = None
) -> tf.data.Dataset:
    """A cached, prefetched tf.data pipeline; shuffled (seeded) for training.

    Keras' numpy adapter rebuilds its pipeline every epoch, which costs more than an
    epoch of this small table; a prepared dataset is about three times faster.
    """
    data = tf.data.Dataset.from_tensor_slices((x, y.astype(np.float32))).cache()
    if shuffle_seed is not None:
        data = data.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_partition(transform_dir: Path, name: str = HOLDOUT) -> Partition:
    """The Transform's partition `name` (the holdout or a `cv_<k>` fold): its transformed table,
    feature columns and groups, and its fitted preprocessor (a skops file)."""
    info = read_json(transform_dir / "features.json")
    folder = transform_dir / name
    return Partition(
        name=name,
        frame=pd.read_csv(folder / "transformed.csv"),
        columns=info["columns"],
        groups=info["groups"],
        preprocessor=sklearn_files.load(folder / PREPROCESSOR),
    )


def save_preprocessor(preprocessor: ColumnTransformer, folder: Path) -> Path:
    """Writes a fitted preprocessor as <folder>/preprocessor.skops; returns the path."""
    sklearn_files.save(preprocessor, folder / PREPROCESSOR)
    return folder / PREPROCESSOR


def list_partitions(transform_dir: Path) -> list[str]:
    """The partitions the Transform wrote (features.json): the holdout, then any cross-validation
    folds."""
    return list(read_json(transform_dir / "features.json")["partitions"])


def numeric_scaling(preprocessor: ColumnTransformer) -> dict[str, tuple[float, float]]:
    """feature -> (mean, scale) of the fitted StandardScaler, to plot in original units."""
    scaler = preprocessor.named_transformers_["numeric"].named_steps["scale"]
    return {
        name: (float(mean), float(scale))
        for name, mean, scale in zip(schema.NUMERIC, scaler.mean_, scaler.scale_)
    }
