"""Trainer: fits a Keras model on the Transform's splits and saves trainer/model.keras.

Everything is Keras' own: the focal loss (models/losses.py), class weights from the
training counts, and callbacks for early stopping on validation AUC (restoring the best
weights), learning-rate decay, checkpointing, resuming a killed run (BackupAndRestore),
TensorBoard scalars and histograms, and a CSV log that becomes history.png.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from absl import logging
from sklearn.utils.class_weight import compute_class_weight

from components.artifacts import atomic_path
from components.figures import save_figure
from components.transform import input_fn, load_spec
from models import build_model
from models.losses import make_loss

HISTORY_METRICS = ("loss", "accuracy", "auc", "precision", "recall")


def class_weights(train_class_counts: list[int]) -> dict[int, float]:
    """'Balanced' weights n / (k * n_c): each class contributes equally to the loss."""
    labels = np.repeat(np.arange(len(train_class_counts)), train_class_counts)
    weights = compute_class_weight("balanced", classes=np.unique(labels), y=labels)
    return {int(c): float(w) for c, w in zip(np.unique(labels), weights)}


def training_metrics(num_classes: int) -> list[keras.metrics.Metric]:
    if num_classes == 2:
        return [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc"),
                keras.metrics.Precision(name="precision"), keras.metrics.Recall(name="recall")]
    return [keras.metrics.CategoricalAccuracy(name="accuracy"), keras.metrics.AUC(name="auc"),
            keras.metrics.Precision(name="precision"), keras.metrics.Recall(name="recall")]


def training_callbacks(out_dir: Path, tensorboard_dir: Path | None,
                       patience: int) -> list[keras.callbacks.Callback]:
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.BackupAndRestore(os.fspath(out_dir / "backup")),
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience,
                                      restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                          patience=max(2, patience // 3), min_lr=1e-6),
        keras.callbacks.ModelCheckpoint(os.fspath(out_dir / "model.keras"), monitor="val_auc",
                                        mode="max", save_best_only=True),
        keras.callbacks.CSVLogger(os.fspath(out_dir / "history.csv"), append=True),
    ]
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(os.fspath(tensorboard_dir), histogram_freq=1))
    return callbacks


def plot_history(history_csv: Path, png_path: Path, tensorboard_dir: Path | None) -> None:
    import matplotlib.pyplot as plt

    history = pd.read_csv(history_csv).drop_duplicates("epoch", keep="last")
    fig, axes = plt.subplots(1, len(HISTORY_METRICS), figsize=(4 * len(HISTORY_METRICS), 3.2))
    for ax, name in zip(axes, HISTORY_METRICS):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + name in history:
                ax.plot(history["epoch"] + 1, history[prefix + name], style,
                        label="validation" if prefix else "train")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    save_figure(fig, png_path, tensorboard_dir, "history")


def trainer(
    out_dir: Path,
    *,
    transform: Path,
    model: str = "cnn",
    weights: str = "none",
    epochs: int = 20,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    loss: str = "focal",
    focal_gamma: float = 2.0,
    focal_alpha: float = 0.5,
    use_class_weights: bool = True,
    patience: int = 10,
    seed: int = 42,
    verbose: int = 2,
    tensorboard_dir: Path | None = None,
) -> dict[str, Any]:
    """The Trainer component: writes model.keras, history.csv and history.png."""
    keras.utils.set_random_seed(seed)
    spec = load_spec(transform)
    num_classes = len(spec["class_names"])
    one_hot = num_classes > 2
    net = build_model(model, spec["image_size"], num_classes, weights=weights)
    net.compile(optimizer=keras.optimizers.Adam(learning_rate),
                loss=make_loss(num_classes, loss, focal_gamma, focal_alpha),
                metrics=training_metrics(num_classes))
    train = input_fn(transform, "train", batch_size, training=True, seed=seed, one_hot=one_hot)
    val = input_fn(transform, "val", batch_size, one_hot=one_hot)
    weights_by_class = class_weights(spec["train_class_counts"]) if use_class_weights else None
    logging.info("trainer: %s, %d parameters, class weights %s", model, net.count_params(),
                 weights_by_class)
    history = net.fit(train, validation_data=val, epochs=epochs, class_weight=weights_by_class,
                      callbacks=training_callbacks(out_dir, tensorboard_dir, patience),
                      shuffle=False, verbose=verbose)  # input_fn shuffles (seeded)
    # EarlyStopping restored the best epoch's weights; save them whole, atomically.
    with atomic_path(out_dir / "model.keras") as tmp:
        net.save(tmp)
    plot_history(out_dir / "history.csv", out_dir / "history.png", tensorboard_dir)
    val_auc = history.history.get("val_auc", [float("nan")])
    return {"model": "model.keras", "epochs_run": len(history.epoch),
            "best_val_auc": float(np.nanmax(val_auc)) if len(val_auc) else float("nan"),
            "parameters": int(net.count_params())}
