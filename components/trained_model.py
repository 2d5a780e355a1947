"""The Trainer's saved model, read back: `trainer/model.keras` for the Evaluator, Explainer,
evaluate and predict, and the decision threshold its run chose (`training_threshold`)."""

from __future__ import annotations

import os
from pathlib import Path

import keras

import models.layers  # noqa: F401  (registers the models' own layers for loading)
from components.artifacts import read_json


def load_keras_model(path: Path) -> keras.Model:
    """A .keras file in safe mode, which refuses to deserialize arbitrary Python code
    (lambdas), with the models' own layers (models/layers.py) registered."""
    return keras.saving.load_model(os.fspath(path), compile=False, safe_mode=True)


def load_trained_model(trainer_dir: Path) -> keras.Model:
    """The Trainer's trainer/model.keras, loaded in safe mode (`load_keras_model`)."""
    return load_keras_model(trainer_dir / "model.keras")


def training_threshold(model_path: Path) -> tuple[float, str] | None:
    """The threshold of the run `model_path` was trained in (<run>/trainer/model.keras ->
    <run>/evaluator/metrics.json), with where it came from; None when there is none."""
    metrics_path = model_path.parent.parent / "evaluator" / "metrics.json"
    if model_path.parent.name != "trainer" or not metrics_path.is_file():
        return None
    metrics = read_json(metrics_path)
    if metrics.get("threshold") is None:
        return None
    return float(metrics["threshold"]), f"{metrics_path} ({metrics.get('threshold_rule')})"
