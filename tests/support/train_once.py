"""Runs the Trainer alone on a saved Transform, optionally stopping for good mid-epoch
so a test can SIGKILL it there (tests/test_resume.py):

    python -m tests.support.train_once TRANSFORM OUT_DIR [PAUSE_EPOCH MARKER]

Prints the Trainer's outputs as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import keras

import components.pneumonia.trainer as trainer

SETTINGS = dict(
    epochs=6,
    patience=2,
    batch_size=8,
    loss="cross_entropy",
    normalization="standardize",
    epoch_heatmaps=False,
    verbose=0,
)


class PauseMidEpoch(keras.callbacks.Callback):
    """After the first batch of `epoch` (earlier epochs backed up): write `marker`, wait."""

    def __init__(self, epoch: int, marker: Path):
        super().__init__()
        self.pause_epoch, self.marker, self.epoch = epoch, marker, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.pause_epoch:
            self.marker.write_text("paused")
            while True:
                time.sleep(1)


def main(argv: list[str]) -> int:
    transform, out_dir = Path(argv[0]), Path(argv[1])
    if len(argv) == 4:
        pause = PauseMidEpoch(int(argv[2]), Path(argv[3]))
        real = trainer.training_callbacks
        trainer.training_callbacks = lambda *a, **k: [*real(*a, **k), pause]
    out_dir.mkdir(parents=True, exist_ok=True)
    print(json.dumps(trainer.run(out_dir, transform=transform, **SETTINGS)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
