"""EDA for the heart table: class balance, missingness, per-class distributions, correlations.

Class balance and missingness are shown for every split (they describe the data, and a
skewed split is worth seeing); distributions and correlations use the train rows only,
so what a reader learns here about test rows cannot steer a modelling choice.
Zeros meaning "not measured" are treated as missing throughout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.artifacts import SPLITS, write_json
from components.reporting.figures import plot_split_counts, plt, save_figure
from datasets.heart_failure import schema

CLASS_COLORS = ("tab:blue", "tab:red")


def class_balance(examples: pd.DataFrame) -> pd.DataFrame:
    """Patients per split (rows) and class (columns named by `schema.CLASS_NAMES`)."""
    counts = pd.crosstab(examples["split"], examples["label"]).reindex(SPLITS).fillna(0)
    return counts.rename(columns=dict(enumerate(schema.CLASS_NAMES)))


def missingness(frame: pd.DataFrame) -> pd.DataFrame:
    """Share of rows missing (blank or "not measured" zero) per numeric column and class."""
    numeric = schema.zeros_as_missing(frame)[list(schema.NUMERIC) + list(schema.BINARY)]
    shares = numeric.isna().groupby(frame["label"]).mean().T
    return shares.rename(columns=dict(enumerate(schema.CLASS_NAMES)))


def plot_patients_per_class(counts: pd.DataFrame) -> plt.Figure:
    """class_balance.png: patients per split, stacked by class."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    plot_split_counts(
        ax, counts, "Class balance per split", "patients", colors=CLASS_COLORS, xlabel=None
    )
    return fig


def plot_missingness(shares: pd.DataFrame) -> plt.Figure:
    """missingness.png: the share of rows missing each feature, by class (blank or a zero that means
    "not measured"): missingness that differs by class is itself a cue."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    (100 * shares).plot.barh(ax=ax, color=CLASS_COLORS)
    ax.set_xlabel("% of rows missing (blank or zero = not measured)")
    ax.set_title("Missingness by class (all splits)")
    return fig


def plot_numeric(train: pd.DataFrame) -> plt.Figure:
    """numeric_by_class.png: a density histogram per numeric feature and class, on the train rows,
    with missing values left out."""
    values = schema.zeros_as_missing(train)
    fig, axes = plt.subplots(2, 3, figsize=(11, 6))
    for ax, name in zip(axes.flat, schema.NUMERIC):
        column = values[name].dropna()
        bins = np.histogram_bin_edges(column, bins=25)
        for label, color in enumerate(CLASS_COLORS):
            ax.hist(
                column[train.loc[column.index, "label"] == label],
                bins=bins,
                alpha=0.5,
                density=True,
                color=color,
                label=schema.CLASS_NAMES[label],
            )
        ax.set_title(name)
    axes.flat[0].legend(fontsize=8)
    axes.flat[-1].axis("off")
    fig.suptitle("Numeric features by class (train rows; missing excluded)")
    fig.tight_layout()
    return fig


def plot_categorical(train: pd.DataFrame) -> plt.Figure:
    """categorical_by_class.png: train rows per category and class for every categorical and binary
    feature, stacked."""
    names = list(schema.CATEGORICAL) + list(schema.BINARY)
    fig, axes = plt.subplots(2, 3, figsize=(11, 6))
    for ax, name in zip(axes.flat, names):
        counts = pd.crosstab(train[name], train["label"])
        if name in schema.CATEGORICAL:
            counts = counts.reindex(schema.CATEGORICAL[name]).fillna(0)
        counts.rename(columns=dict(enumerate(schema.CLASS_NAMES))).plot.bar(
            ax=ax, stacked=True, color=CLASS_COLORS, rot=0, legend=False
        )
        ax.set_title(name)
        ax.set_xlabel("")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Categorical features by class (train rows)")
    fig.tight_layout()
    return fig


def correlations(train: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlations (pairwise, missing excluded) of numerics, binaries and target."""
    values = schema.zeros_as_missing(train)
    coded = values[list(schema.NUMERIC) + list(schema.BINARY)].copy()
    # Two-level categoricals as 0/1 so they join the matrix with a readable sign.
    coded["Sex_M"] = (values["Sex"] == "M").astype(float)
    coded["ExerciseAngina_Y"] = (values["ExerciseAngina"] == "Y").astype(float)
    coded[schema.TARGET] = train["label"].astype(float)
    return coded.corr(method="spearman")


def plot_correlations(matrix: pd.DataFrame) -> plt.Figure:
    """correlations.png: the Spearman correlation matrix of the train rows (target included), each
    cell annotated."""
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(matrix.to_numpy(), cmap="coolwarm", vmin=-1, vmax=1)
    ax.set_xticks(range(len(matrix)), matrix.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(matrix)), matrix.index)
    for (i, j), value in np.ndenumerate(matrix.to_numpy()):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title("Spearman correlations (train rows)")
    return fig


def run(out_dir: Path, *, examples: Path, tensorboard_dir: Path | None = None) -> dict[str, Any]:
    """The heart EDA step: class balance, missingness, per-class distributions and Spearman
    correlations of examples.csv, as PNGs (and TensorBoard images) and summary.json; only the train
    rows feed the distributions and correlations, so the test split stays unseen."""
    table = pd.read_csv(examples / "examples.csv")
    train = table[table["split"] == "train"]
    balance = class_balance(table)
    missing = missingness(table)
    matrix = correlations(train)
    figures = {
        "class_balance": plot_patients_per_class(balance),
        "missingness": plot_missingness(missing),
        "numeric_by_class": plot_numeric(train),
        "categorical_by_class": plot_categorical(train),
        "correlations": plot_correlations(matrix),
    }
    for name, fig in figures.items():
        save_figure(fig, out_dir / f"{name}.png", tensorboard_dir, f"eda/{name}")
    by_class = schema.zeros_as_missing(train).groupby("label")[list(schema.NUMERIC)].median()
    summary = {
        "class_balance": balance.astype(int).to_dict(orient="index"),
        "missing_share_by_class": missing.round(4).to_dict(orient="index"),
        "spearman_with_target": matrix[schema.TARGET].drop(schema.TARGET).round(4).to_dict(),
        "train_median_by_class": by_class.rename(index=dict(enumerate(schema.CLASS_NAMES)))
        .round(3)
        .to_dict(orient="index"),
        "figures": [f"{name}.png" for name in figures],
    }
    write_json(out_dir / "summary.json", summary)
    return {"figures": summary["figures"], "spearman_with_target": summary["spearman_with_target"]}
