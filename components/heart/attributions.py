"""Per-patient attributions of the heart models, shared by the heart Explainer (test
patients) and `pipelines.predict` (new patients): SHAP's DeepExplainer for the MLP
against a seeded background of train rows, attributions summed per original feature,
and the waterfall plot of one patient.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import shap

from components.reporting.figures import plt
from datasets.heart_failure import schema
from models.mlp import logit_model


def background_rows(x_train: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A seeded sample of train rows: the reference SHAP values are measured against."""
    rng = np.random.default_rng(seed)
    return x_train[np.sort(rng.choice(len(x_train), min(size, len(x_train)), replace=False))]


def deep_shap(model: Any, background: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """SHAP values (rows, columns) of the MLP's logit and the expected logit."""
    with warnings.catch_warnings():  # a notice about TF >= 2.4, not about this model
        warnings.filterwarnings("ignore", message="Your TensorFlow version is newer")
        explainer = shap.DeepExplainer(logit_model(model, list_input=True), background)
    # Additivity is measured and recorded by the caller rather than raised on.
    values = explainer.shap_values(x, check_additivity=False)
    return np.asarray(values).reshape(len(x), -1), float(np.ravel(explainer.expected_value)[0])


def group_sum(values: np.ndarray, columns: list[str], groups: dict[str, list[str]]) -> pd.DataFrame:
    """(rows, columns) attributions -> (rows, original features), summed within a group."""
    index = {c: i for i, c in enumerate(columns)}
    return pd.DataFrame(
        {
            feature: values[:, [index[c] for c in cols]].sum(axis=1)
            for feature, cols in groups.items()
        }
    )


def plot_waterfall(values: np.ndarray, expected: float, raw: pd.Series, title: str) -> plt.Figure:
    """A SHAP waterfall of one patient: `values` (one per original feature, log-odds) from
    `expected` up to the patient's logit, labelled with the patient's `raw` values (a zero that
    means "not measured" shown as such). The Explainer's and predict's waterfalls."""
    display = np.array(
        [
            "not measured"
            if name in schema.ZERO_MEANS_MISSING and value == 0
            else value
            if isinstance(value, str)
            else float(value)
            for name, value in raw.items()
        ],
        dtype=object,
    )
    explanation = shap.Explanation(
        values=values, base_values=expected, data=display, feature_names=list(raw.index)
    )
    fig = plt.figure()  # shap draws on the current figure and sizes it itself
    shap.plots.waterfall(explanation, max_display=len(values), show=False)
    fig.suptitle(title, fontsize=10)
    return fig
