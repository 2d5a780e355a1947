"""The heart Trainer's models, read back: which were trained, where, and their predictions.

`trainer/summary.json` lists each partition's trained models; each model sits in
trainer/<model>/ (holdout) or trainer/<cv_k>/<model>/ (folds) as model.keras or
model.joblib. Every model predicts on the log-odds scale, where all three are additive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import joblib
import keras
import numpy as np
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

from components.artifacts import read_json
from components.heart_partitions import HOLDOUT
from models.mlp import logit_model

MODELS = ("lasso", "mlp", "nam")
# One colour per model in every plot of the run.
MODEL_COLORS = {"lasso": "tab:green", "mlp": "tab:purple", "nam": "tab:orange"}
TrainedModel = Union[LogisticRegression, LogisticRegressionCV, keras.Model]


def model_dir(trainer_dir: Path, partition: str, model: str) -> Path:
    """trainer/<model>/ for the holdout partition, trainer/<cv_k>/<model>/ for folds."""
    return trainer_dir / model if partition == HOLDOUT else trainer_dir / partition / model


def trained_models(trainer_dir: Path) -> list[str]:
    return list(read_json(trainer_dir / "summary.json")[HOLDOUT])


def load_model(folder: Path) -> TrainedModel:
    import models.nam  # noqa: F401  registers the NAM layers for deserialization

    if (folder / "model.joblib").exists():
        return joblib.load(folder / "model.joblib")
    return keras.models.load_model(folder / "model.keras")


def predict_logit(model: TrainedModel, x: np.ndarray) -> np.ndarray:
    """Log-odds of heart disease, the scale on which all three models are additive."""
    if isinstance(model, keras.Model):
        # A direct call: predict() would trace a new function for every sub-model.
        return keras.ops.convert_to_numpy(logit_model(model)(x, training=False))[:, 0]
    return model.decision_function(x)


def predict_proba(model: TrainedModel, x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-predict_logit(model, x)))
