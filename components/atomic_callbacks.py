"""Keras callbacks that write the Trainers' per-epoch files atomically.

Keras' ModelCheckpoint saves `model.keras` in place and CSVLogger appends to
`history.csv` as training goes; a run killed while either writes leaves a half-written
file, and a resumed Trainer keeps both (the runner's keep_on_rerun). These two write
through components/artifacts.py instead: a temporary name beside the file, renamed into
place, so a kill leaves the previous file whole.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from components.artifacts import atomic_path, write_csv


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """keras.callbacks.ModelCheckpoint (the same monitor, mode, best-only rule and `best`
    state) whose every save goes to a temporary name that is renamed onto `filepath`.

    Overrides ModelCheckpoint._save_model, Keras 3's one place that writes; only the write
    changes (tests/test_interruption.py checks an interrupted save keeps the old model).
    """

    def _save_model(self, epoch, batch, logs):
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, batch, logs, filepath):
            return
        # Keras reads the format from the ending: .keras, or .weights.h5 for weights.
        with atomic_path(filepath, suffix="".join(Path(filepath).suffixes)) as tmp:
            if self.save_weights_only:
                self.model.save_weights(os.fspath(tmp), overwrite=True)
            else:
                self.model.save(os.fspath(tmp), overwrite=True)


class AtomicCSVLogger(keras.callbacks.Callback):
    """keras.callbacks.CSVLogger's file (one row an epoch: `epoch`, then the logs' keys in
    sorted order), rewritten whole under a temporary name after every epoch.

    `append`: keep the rows already in `path` (a resumed run, a second training phase);
    otherwise start from none. A history is tens of rows, so rewriting it costs nothing.
    """

    def __init__(self, path: str | os.PathLike, append: bool = False):
        super().__init__()
        self.path = Path(path)
        self.append = append
        self.rows = pd.DataFrame()

    def on_train_begin(self, logs=None):
        """Starts from the rows already in the file with `append` (a resumed run), else from none."""
        kept = self.append and self.path.is_file()
        self.rows = pd.read_csv(self.path) if kept else pd.DataFrame()

    def on_epoch_end(self, epoch, logs=None):
        """Adds the epoch's row (logs in sorted key order) and rewrites the whole file atomically."""
        logs = logs or {}
        row = pd.DataFrame([{"epoch": epoch, **{key: _plain(logs[key]) for key in sorted(logs)}}])
        self.rows = pd.concat([self.rows, row], ignore_index=True) if len(self.rows) else row
        write_csv(self.path, self.rows)


def _plain(value):
    """A log value as a CSV cell: a number as a float, anything else as its text."""
    array = np.asarray(value)
    return float(array) if array.ndim == 0 and np.issubdtype(array.dtype, np.number) else str(value)
