"""The heart Trainer's models, read back: which were trained, where, and their predictions.

`trainer/summary.json` lists each partition's trained models; each model sits in
trainer/<model>/ (holdout) or trainer/<cv_k>/<model>/ (folds) as model.keras (loaded
in Keras safe mode) or model.skops (scikit-learn, components/sklearn_files: loaded with
an explicit trusted list, never unpickled). Every model predicts on the log-odds scale,
where all three are additive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

from components import sklearn_files
from components.artifacts import read_json
from components.heart.partitions import HOLDOUT
from models.mlp import logit_model
from models.training import float32_copy

MODELS = ("lasso", "mlp", "nam")
# One colour per model in every plot of the run.
MODEL_COLORS = {"lasso": "tab:green", "mlp": "tab:purple", "nam": "tab:orange"}
TrainedModel = Union[LogisticRegression, LogisticRegressionCV, keras.Model]


def model_dir(trainer_dir: Path, partition: str, model: str) -> Path:
    """trainer/<model>/ for the holdout partition, trainer/<cv_k>/<model>/ for folds."""
    return trainer_dir / model if partition == HOLDOUT else trainer_dir / partition / model


def trained_models(trainer_dir: Path) -> list[str]:
    """The models the Trainer fitted on the holdout partition, in its order (from summary.json)."""
    return list(read_json(trainer_dir / "summary.json")[HOLDOUT])


SKLEARN_MODEL = "model" + sklearn_files.SUFFIX


def save_sklearn_model(model: LogisticRegressionCV, folder: Path) -> Path:
    """Writes a scikit-learn model as <folder>/model.skops; returns the path."""
    sklearn_files.save(model, folder / SKLEARN_MODEL)
    return folder / SKLEARN_MODEL


def load_model(folder: Path) -> TrainedModel:
    """The model in `folder`; executes nothing from the files (DataError on anything else).

    model.keras loads in Keras safe mode (no Lambda code); model.skops through
    sklearn_files.load; a pickle where a model was (model.joblib) is refused.
    """
    import models.nam  # noqa: F401  registers the NAM layers for deserialization

    if (folder / "model.keras").exists():
        # Scored and explained in float32 whatever the training precision: SHAP and
        # scikit-learn's metrics take float32 arrays, not bfloat16 ones.
        return float32_copy(keras.models.load_model(folder / "model.keras", safe_mode=True))
    return sklearn_files.load(folder / SKLEARN_MODEL)


def predict_logit(model: TrainedModel, x: np.ndarray) -> np.ndarray:
    """Log-odds of heart disease, the scale on which all three models are additive."""
    if isinstance(model, keras.Model):
        # A direct call: predict() would trace a new function for every sub-model.
        return keras.ops.convert_to_numpy(logit_model(model)(x, training=False))[:, 0]
    return model.decision_function(x)


def predict_proba(model: TrainedModel, x: np.ndarray) -> np.ndarray:
    """The probability of heart disease: the sigmoid of `predict_logit`."""
    return 1.0 / (1.0 + np.exp(-predict_logit(model, x)))
