"""The Trainer's saved model, read back: `trainer/model.keras` for the Evaluator and Explainer."""

from __future__ import annotations

import os
from pathlib import Path

import keras

import models.layers  # noqa: F401  (registers the models' own layers for loading)


def load_keras_model(path: Path) -> keras.Model:
    """A .keras file in safe mode, which refuses to deserialize arbitrary Python code
    (lambdas), with the models' own layers (models/layers.py) registered."""
    return keras.saving.load_model(os.fspath(path), compile=False, safe_mode=True)


def load_trained_model(trainer_dir: Path) -> keras.Model:
    return load_keras_model(trainer_dir / "model.keras")
