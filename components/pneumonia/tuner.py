"""Tuner: keras-tuner search over the default CNN on the validation split.

Searches filters, depth, dropout, learning rate and focal gamma; objective: validation
AUC. Writes tuner/trials.csv (one row per trial), tuner/best_hyperparameters.json (which
the Trainer reads), and per-trial TensorBoard logs with HParams (keras-tuner writes them
when given a TensorBoard callback).

Distributed tuning is keras-tuner's own chief/worker mode, set by its environment
variables (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT; docs/distributed.md):
on the chief (an id containing "chief") `search` serves the oracle on that address until
the trials are done, and this step then writes the files above; a worker (ids tuner0,
tuner1, ...) runs the trials the oracle hands it, in a temporary folder of its own
(pipelines.pneumonia), and reports its number with each trial, so trials.csv says which
worker ran which trial.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import pandas as pd

from components.artifacts import write_csv, write_json
from components.distribution import tuner_worker_id
from components.saved_splits import input_fn, load_spec
from models.cnn import DEFAULT_NORMALIZATION, build_cnn, search_space
from models.losses import DEFAULT_LOSS
from models.training import (
    class_weights,
    compile_for_training,
    compute_precision,
    precision_policy,
)

TUNERS = ("random", "bayesian", "hyperband")
WORKER_METRIC = "tuner_worker"


def tuner_worker_number() -> int | None:
    """N of a worker id "tunerN" (-1 for an id without a number); None off a worker."""
    tuner_id = tuner_worker_id()
    if tuner_id is None:
        return None
    digits = re.search(r"(\d+)$", tuner_id)
    return int(digits.group(1)) if digits else -1


class CnnHyperModel(keras_tuner.HyperModel):
    """The CNN of the final training (same input normalization and loss) per trial."""

    def __init__(
        self,
        image_size: int,
        num_classes: int,
        focal_alpha: float,
        loss: str = DEFAULT_LOSS,
        normalization: str = DEFAULT_NORMALIZATION,
        class_weight: dict[int, float] | None = None,
        policy: str = "float32",
    ):
        super().__init__(name="cnn")
        self.image_size, self.num_classes, self.focal_alpha = image_size, num_classes, focal_alpha
        self.loss, self.normalization, self.class_weight = loss, normalization, class_weight
        self.policy = policy

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args, **kwargs):
        """keras-tuner's hook for one trial's training: with the final training's weights.

        A distributed worker adds its number to the trial's metrics (the only channel
        from a worker to the chief's oracle; keras-tuner records no worker per trial).
        """
        history = model.fit(*args, class_weight=self.class_weight, **kwargs)
        worker = tuner_worker_number()
        if worker is not None and isinstance(history, keras.callbacks.History):
            history.history[WORKER_METRIC] = [float(worker)] * len(history.epoch)
        return history

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """One trial's CNN: filters, dropout, learning rate and focal gamma from the search space
        (`models.cnn.search_space`), built and compiled as the Trainer would, in its precision."""
        settings = search_space(hp)
        # Trials compute in the final training's precision (models/training.py).
        with compute_precision(self.policy):
            model = build_cnn(
                self.image_size,
                1,
                self.num_classes,
                filters=settings["filters"],
                dropout=settings["dropout"],
                normalization=self.normalization,
            )
            compile_for_training(
                model,
                self.num_classes,
                settings["learning_rate"],
                self.loss,
                settings["focal_gamma"],
                self.focal_alpha,
            )
        return model


def make_tuner(
    kind: str,
    hypermodel: keras_tuner.HyperModel,
    max_trials: int,
    epochs: int,
    directory: Path,
    seed: int,
) -> keras_tuner.Tuner:
    """The keras-tuner search `kind` names (`TUNERS`: random, bayesian, hyperband) maximizing
    validation AUC, kept under `directory` so a killed search resumes (`overwrite=False`). Hyperband
    sets its own trial count from `epochs`; `max_trials` applies to the others."""
    common = dict(
        objective=keras_tuner.Objective("val_auc", direction="max"),
        directory=os.fspath(directory),
        project_name="search",
        seed=seed,
        overwrite=False,
    )
    if kind == "random":
        return keras_tuner.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if kind == "bayesian":
        return keras_tuner.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    if kind == "hyperband":
        # Hyperband sets its own trial count from max_epochs; max_trials caps nothing there.
        return keras_tuner.Hyperband(hypermodel, max_epochs=max(epochs, 2), factor=3, **common)
    raise ValueError(f"unknown tuner {kind!r}; choose from {', '.join(TUNERS)}")


def run(
    out_dir: Path,
    *,
    transform: Path,
    kind: str = "random",
    max_trials: int = 10,
    epochs: int = 5,
    batch_size: int = 32,
    focal_alpha: float = 0.5,
    loss: str = DEFAULT_LOSS,
    use_class_weights: bool = True,
    normalization: str = DEFAULT_NORMALIZATION,
    precision: str = "auto",
    seed: int = 42,
    tensorboard_dir: Path | None = None,
) -> dict[str, Any]:
    """The Tuner component: trials.csv and best_hyperparameters.json.

    Trials train as the final training will: the same loss, class weights and input
    normalization (focal_gamma is searched but only acts with the focal loss).
    """
    keras.utils.set_random_seed(seed)
    spec = load_spec(transform)
    num_classes = len(spec["class_names"])
    one_hot = num_classes > 2
    search = make_tuner(
        kind,
        CnnHyperModel(
            spec["image_size"],
            num_classes,
            focal_alpha,
            loss,
            normalization,
            class_weights(spec["train_class_counts"]) if use_class_weights else None,
            precision_policy(precision),
        ),
        max_trials,
        epochs,
        out_dir / "keras_tuner",
        seed,
    )
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=3)
    ]
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(os.fspath(tensorboard_dir)))
    search.search(
        input_fn(transform, "train", batch_size, training=True, seed=seed, one_hot=one_hot),
        validation_data=input_fn(transform, "val", batch_size, one_hot=one_hot),
        epochs=epochs,
        callbacks=callbacks,
        verbose=0,
    )
    if tuner_worker_id() is not None:
        # The chief's oracle holds the trials and writes the results.
        return {"tuner_id": tuner_worker_id()}
    trials = search.oracle.get_best_trials(num_trials=len(search.oracle.trials))
    table = pd.DataFrame(
        [
            {
                "trial": t.trial_id,
                "val_auc": t.score,
                "status": t.status,
                **(
                    {"worker": int(t.metrics.get_last_value(WORKER_METRIC))}
                    if t.metrics.exists(WORKER_METRIC)
                    else {}
                ),
                **t.hyperparameters.values,
            }
            for t in trials
        ]
    )
    write_csv(out_dir / "trials.csv", table)
    best = search.get_best_hyperparameters(1)[0].values
    write_json(out_dir / "best_hyperparameters.json", best)
    return {
        "best_hyperparameters": best,
        "trials": int(len(table)),
        "best_val_auc": float(table["val_auc"].max()) if len(table) else float("nan"),
    }
