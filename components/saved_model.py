"""The Trainer's saved model, read back: `trainer/model.keras` for the Evaluator and Explainer."""

from __future__ import annotations

import os
from pathlib import Path

import keras

import models.layers  # noqa: F401  (registers the models' own layers for loading)


def load_trained_model(trainer_dir: Path) -> keras.Model:
    # safe_mode refuses to deserialize arbitrary Python code (lambdas) from a model file.
    return keras.saving.load_model(
        os.fspath(trainer_dir / "model.keras"), compile=False, safe_mode=True
    )
