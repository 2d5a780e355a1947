"""Trainer for the heart table: lasso, MLP and NAM through one fit path per partition.

* lasso: L1 logistic regression (scikit-learn LogisticRegressionCV), its strength chosen
  by stratified cross-validation on the train rows (AUC).
* mlp, nam: Keras models trained on train rows, validated on val rows, with the same
  callbacks (EarlyStopping restoring the best weights, ReduceLROnPlateau, the epoch log
  history.csv rewritten atomically, TensorBoard for the holdout partition) and balanced class weights. `tune` runs a
  keras-tuner random search per partition first (on that partition's own train/val
  rows, so cross-validation estimates stay honest).

Every model is saved with what is needed to reload it for prediction: `model.keras`
or `model.skops`, plus `hparams.json`; Keras models also get history.csv/png.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from absl import logging
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold

from components.artifacts import atomic_path, write_json
from components.atomic_callbacks import AtomicCSVLogger
from components.heart.model_files import model_dir, save_sklearn_model
from components.heart.partitions import (
    HOLDOUT,
    Partition,
    input_fn,
    list_partitions,
    load_partition,
)
from components.reporting.figures import plt, save_figure
from models.mlp import build_mlp
from models.nam import build_nam
from models.training import class_weights, compute_precision, precision_policy

KERAS_MODELS = ("mlp", "nam")

DEFAULT_HPARAMS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": [32, 16], "dropout": 0.2, "l2": 1e-4, "learning_rate": 1e-3},
    "nam": {
        "hidden": [32, 16],
        "first_layer": "relu",
        "dropout": 0.1,
        "feature_dropout": 0.05,
        "output_penalty": 1e-3,
        "l2": 1e-5,
        "learning_rate": 3e-3,
    },
}


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """What every model of one Trainer run is fitted with: seed, epoch cap and early-stopping
    patience for the Keras models, the lasso's cross-validation, and the dtype policy."""

    seed: int
    epochs: int
    batch_size: int = 32
    patience: int = 20  # epochs without val-loss improvement before stopping
    lasso_folds: int = 5
    lasso_cs: int = 20  # strengths on LogisticRegressionCV's log grid 1e-4..1e4
    policy: str = "float32"  # the Keras models' dtype policy (models/training.py)


def balanced(y: np.ndarray) -> dict[int, float]:
    """Balanced class weights for 0/1 labels (models/training.py)."""
    return class_weights(np.bincount(y.astype(int), minlength=2))


def fit_lasso(x: np.ndarray, y: np.ndarray, config: FitConfig) -> LogisticRegressionCV:
    """An L1 logistic regression whose strength C is chosen by stratified k-fold cross-validation on
    AUC, with balanced class weights; seeded, as liblinear shuffles."""
    folds = StratifiedKFold(config.lasso_folds, shuffle=True, random_state=config.seed)
    return LogisticRegressionCV(
        Cs=config.lasso_cs,
        l1_ratios=(1.0,),
        solver="liblinear",
        cv=folds,
        scoring="roc_auc",
        class_weight="balanced",
        max_iter=1000,
        random_state=config.seed,  # liblinear shuffles: unseeded, coefficients vary by run
        use_legacy_attributes=False,
    ).fit(x, y)


def build_keras(
    kind: str, n_features: int, hparams: dict[str, Any], seed: int, policy: str = "float32"
) -> keras.Model:
    """A new MLP or NAM (`kind`) for `n_features` inputs under the dtype `policy`, its weights
    seeded so the same run builds the same model."""
    keras.utils.set_random_seed(seed)  # same weights and dropout masks on every run
    with compute_precision(policy):
        if kind == "mlp":
            return build_mlp(n_features, **hparams)
        return build_nam(n_features, seed=seed, **hparams)


def callbacks(
    folder: Path, tensorboard_dir: Path | None, patience: int
) -> list[keras.callbacks.Callback]:
    """Early stopping on validation loss (best weights restored), learning-rate halving on a
    plateau, history.csv written atomically, and TensorBoard when given a folder."""
    result = [
        keras.callbacks.EarlyStopping("val_loss", patience=patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(
            "val_loss", factor=0.5, patience=max(patience // 3, 1), min_lr=1e-5
        ),
        AtomicCSVLogger(folder / "history.csv"),
    ]
    if tensorboard_dir is not None:
        result.append(keras.callbacks.TensorBoard(str(tensorboard_dir), histogram_freq=0))
    return result


def fit_keras(
    model: keras.Model,
    partition: Partition,
    config: FitConfig,
    folder: Path,
    tensorboard_dir: Path | None,
) -> keras.callbacks.History:
    """Fits a Keras model on the partition's train rows (shuffled, seeded, balanced class weights),
    validating on its val rows; returns Keras' History."""
    x, y = partition.x("train"), partition.y("train")
    return model.fit(
        input_fn(x, y, config.batch_size, shuffle_seed=config.seed),
        validation_data=input_fn(partition.x("val"), partition.y("val"), 256),
        epochs=config.epochs,
        class_weight=balanced(y),
        callbacks=callbacks(folder, tensorboard_dir, config.patience),
        shuffle=False,
        verbose=0,
    )  # the dataset is already shuffled (seeded)


def tune_keras(
    kind: str, partition: Partition, config: FitConfig, max_trials: int, folder: Path
) -> dict[str, Any]:
    """keras-tuner random search on val AUC; returns the best hyperparameters."""
    import keras_tuner  # only --tune pays for the import

    def hypermodel(hp: keras_tuner.HyperParameters) -> keras.Model:
        return build_keras(
            kind, len(partition.columns), search_space(kind, hp), config.seed, config.policy
        )

    tuner = keras_tuner.RandomSearch(
        hypermodel,
        objective=keras_tuner.Objective("val_auc", direction="max"),
        max_trials=max_trials,
        seed=config.seed,
        directory=str(folder),
        project_name="tuning",
        overwrite=True,
    )
    x, y = partition.x("train"), partition.y("train")
    tuner.search(
        input_fn(x, y, config.batch_size, shuffle_seed=config.seed),
        validation_data=input_fn(partition.x("val"), partition.y("val"), 256),
        epochs=config.epochs,
        class_weight=balanced(y),
        shuffle=False,
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(
                "val_loss", patience=config.patience, restore_best_weights=True
            )
        ],
    )
    best = tuner.get_best_hyperparameters(1)[0]
    trials = [
        {"val_auc": t.score, "hparams": search_space(kind, t.hyperparameters)}
        for t in tuner.oracle.get_best_trials(max_trials)
    ]
    write_json(folder / "tuning.json", {"objective": "val_auc", "trials": trials})
    return search_space(kind, best)


def search_space(kind: str, hp: Any) -> dict[str, Any]:
    """The tuned hyperparameters (hp: keras_tuner.HyperParameters) as builder kwargs."""
    layers = hp.Int("layers", 1, 3)
    width = hp.Choice("width", [16, 32, 64])
    # Rounded: stepped floats come back as 0.30000000000000004.
    common = {
        "hidden": [max(width // 2**i, 8) for i in range(layers)],
        "dropout": round(hp.Float("dropout", 0.0, 0.5, step=0.1), 3),
        "l2": hp.Float("l2", 1e-6, 1e-2, sampling="log"),
        "learning_rate": hp.Float("learning_rate", 3e-4, 1e-2, sampling="log"),
    }
    if kind == "nam":
        common.update(
            first_layer=hp.Choice("first_layer", ["relu", "exu"]),
            feature_dropout=round(hp.Float("feature_dropout", 0.0, 0.3, step=0.05), 3),
            output_penalty=hp.Float("output_penalty", 1e-5, 1e-1, sampling="log"),
        )
    return common


def save_history_plot(
    history: pd.DataFrame, png: Path, tensorboard_dir: Path | None, tag: str
) -> None:
    """history.png: train and validation loss and AUC per epoch, titled `tag`, also logged to
    TensorBoard."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, metric in zip(axes, ("loss", "auc")):
        ax.plot(history["epoch"] + 1, history[metric], label="train")
        ax.plot(history["epoch"] + 1, history[f"val_{metric}"], label="val")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.suptitle(tag)
    save_figure(fig, png, tensorboard_dir, tag)


def default_hparams(kind: str, nam_units: str = "relu") -> dict[str, Any]:
    """The untuned settings of `kind` (`DEFAULT_HPARAMS`); a NAM's first layer is `nam_units` (relu
    or exu)."""
    hparams = dict(DEFAULT_HPARAMS[kind])
    if kind == "nam":
        hparams["first_layer"] = nam_units
    return hparams


def train_one(
    kind: str,
    partition: Partition,
    config: FitConfig,
    folder: Path,
    tune: bool,
    max_trials: int,
    tensorboard_dir: Path | None,
    nam_units: str = "relu",
) -> dict[str, Any]:
    """Fits one model of one partition into `folder` (the lasso as a skops file, a Keras model as
    model.keras, tuned first with `tune`) and writes its hparams.json; returns the summary the
    Trainer's summary.json records for it."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "lasso":
        model = fit_lasso(partition.x("train"), partition.y("train"), config)
        save_sklearn_model(model, folder)
        coef = model.coef_[0]
        summary = {
            "C": float(model.C_),
            "nonzero": int(np.sum(coef != 0)),
            "dropped": [c for c, w in zip(partition.columns, coef) if w == 0],
        }
        write_json(folder / "hparams.json", {"model": kind, **summary})
        return summary
    hparams = (
        tune_keras(kind, partition, config, max_trials, folder)
        if tune
        else default_hparams(kind, nam_units)
    )
    model = build_keras(kind, len(partition.columns), hparams, config.seed, config.policy)
    board = None if tensorboard_dir is None else tensorboard_dir / kind
    history = fit_keras(model, partition, config, folder, board)
    with atomic_path(folder / "model.keras") as tmp:
        model.save(tmp)
    epochs = len(history.history["loss"])
    best = int(np.argmin(history.history["val_loss"]))
    write_json(
        folder / "hparams.json",
        {
            "model": kind,
            "tuned": tune,
            "hparams": hparams,
            "epochs_run": epochs,
            "best_epoch": best + 1,
        },
    )
    save_history_plot(
        pd.read_csv(folder / "history.csv"),
        folder / "history.png",
        board,
        f"{partition.name}/{kind}/history",
    )
    return {
        "epochs_run": epochs,
        "best_epoch": best + 1,
        "best_val_auc": float(history.history["val_auc"][best]),
        "hparams": hparams,
    }


def run(
    out_dir: Path,
    *,
    transform: Path,
    models: list[str],
    seed: int,
    epochs: int,
    tune: bool,
    max_trials: int,
    nam_units: str = "relu",
    precision: str = "float32",
    tensorboard_dir: Path | None = None,
) -> dict[str, Any]:
    """The heart Trainer: every model in `models` (lasso, mlp, nam) on every partition the Transform
    wrote; TensorBoard curves for the holdout only. Writes summary.json."""
    config = FitConfig(seed=seed, epochs=epochs, policy=precision_policy(precision))
    results: dict[str, Any] = {}
    for name in list_partitions(transform):
        partition = load_partition(transform, name)
        results[name] = {}
        for kind in models:
            logging.info("trainer: %s on %s", kind, name)
            board = tensorboard_dir if name == HOLDOUT else None  # one set of curves
            results[name][kind] = train_one(
                kind,
                partition,
                config,
                model_dir(out_dir, name, kind),
                tune,
                max_trials,
                board,
                nam_units,
            )
    write_json(out_dir / "summary.json", results)
    return {"models": models, "holdout": results[HOLDOUT], "partitions": list(results)}
