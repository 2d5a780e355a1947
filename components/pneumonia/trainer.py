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
import tensorflow as tf
from absl import logging
from sklearn.utils.class_weight import compute_class_weight

from components.artifacts import atomic_path, read_json
from components.reporting.figures import save_figure
from components.pneumonia.transform import input_fn, load_spec
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
        # double_checkpoint: a kill while the backup is written leaves the previous one.
        keras.callbacks.BackupAndRestore(os.fspath(out_dir / "backup"), double_checkpoint=True),
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


def epoch_heatmap_callbacks(net: keras.Model, transform: Path,
                            tensorboard_dir: Path) -> list[keras.callbacks.Callback]:
    """tf-explain's Grad-CAM and IG on 8 fixed validation images after every epoch.

    Binary models with a flat conv stack only: tf-explain's Grad-CAM cannot reach inside a
    nested backbone, and it explains one fixed class index.
    """
    from components.explain.gradcam import last_conv_layer
    from components.explain.training_heatmaps import heatmap_callbacks

    if net.outputs[0].shape[-1] != 1 or isinstance(last_conv_layer(net), keras.Model):
        logging.info("trainer: no per-epoch tf-explain heatmaps for %s", net.name)
        return []
    images, labels = next(iter(input_fn(transform, "val", batch_size=8)))
    return heatmap_callbacks(images.numpy(), labels.numpy(), tensorboard_dir)


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """default: one device; mirrored: all local GPUs; multi_worker: machines in TF_CONFIG."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r} (default, mirrored or multi_worker)")


def run(
    out_dir: Path,
    *,
    transform: Path,
    tuner: Path | None = None,
    model: str = "cnn",
    weights: str = "none",
    epochs: int = 30,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    loss: str = "focal",
    focal_gamma: float = 2.0,
    focal_alpha: float = 0.5,
    use_class_weights: bool = True,
    patience: int = 10,
    fine_tune_layers: int = 0,
    fine_tune_epochs: int = 10,
    strategy: str = "default",
    mixed_precision: bool = False,
    epoch_heatmaps: bool = True,
    seed: int = 42,
    verbose: int = 2,
    tensorboard_dir: Path | None = None,
) -> dict[str, Any]:
    """The Trainer component: writes model.keras, history.csv and history.png.

    With a Tuner upstream, its best hyperparameters replace the CNN's defaults. With
    `fine_tune_layers` N > 0 (transfer backbones), a second phase unfreezes the top N
    backbone layers and trains `fine_tune_epochs` more at a tenth of the learning rate.
    """
    keras.utils.set_random_seed(seed)
    # Same flags and seed, same model on CPU: deterministic kernels cost little there.
    tf.config.experimental.enable_op_determinism()
    if mixed_precision:  # float16 compute on GPUs; models keep their outputs in float32
        keras.mixed_precision.set_global_policy("mixed_float16")
    spec = load_spec(transform)
    num_classes = len(spec["class_names"])
    one_hot = num_classes > 2
    architecture: dict[str, Any] = {}
    if tuner is not None:
        from components.pneumonia.tuner import cnn_settings

        best = cnn_settings(read_json(tuner / "best_hyperparameters.json"))
        architecture = {"filters": best["filters"], "dropout": best["dropout"]}
        learning_rate, focal_gamma = best["learning_rate"], best["focal_gamma"]
        logging.info("trainer: tuned hyperparameters %s", best)
    with distribution_strategy(strategy).scope():
        net = build_model(model, spec["image_size"], num_classes, weights=weights, **architecture)
        net.compile(optimizer=keras.optimizers.Adam(learning_rate),
                    loss=make_loss(num_classes, loss, focal_gamma, focal_alpha),
                    metrics=training_metrics(num_classes))
    train = input_fn(transform, "train", batch_size, training=True, seed=seed, one_hot=one_hot)
    val = input_fn(transform, "val", batch_size, one_hot=one_hot)
    weights_by_class = class_weights(spec["train_class_counts"]) if use_class_weights else None
    logging.info("trainer: %s, %d parameters, class weights %s", model, net.count_params(),
                 weights_by_class)
    callbacks = training_callbacks(out_dir, tensorboard_dir, patience)
    if tensorboard_dir is not None and epoch_heatmaps:
        callbacks += epoch_heatmap_callbacks(net, transform, tensorboard_dir)
    history = net.fit(train, validation_data=val, epochs=epochs, class_weight=weights_by_class,
                      callbacks=callbacks, shuffle=False, verbose=verbose)  # input_fn shuffles
    val_auc = list(history.history.get("val_auc", []))
    epochs_run = len(history.epoch)
    if fine_tune_layers > 0:
        from models.transfer import fine_tune_layers as unfreeze_top

        with distribution_strategy(strategy).scope():
            unfreeze_top(net, fine_tune_layers)
            net.compile(optimizer=keras.optimizers.Adam(learning_rate / 10),
                        loss=make_loss(num_classes, loss, focal_gamma, focal_alpha),
                        metrics=training_metrics(num_classes))
        phase2 = net.fit(train, validation_data=val, initial_epoch=epochs_run,
                         epochs=epochs_run + fine_tune_epochs, class_weight=weights_by_class,
                         callbacks=training_callbacks(out_dir, tensorboard_dir, patience),
                         shuffle=False, verbose=verbose)
        val_auc += list(phase2.history.get("val_auc", []))
        epochs_run += len(phase2.epoch)
    # EarlyStopping restored the best epoch's weights; save them whole, atomically.
    with atomic_path(out_dir / "model.keras") as tmp:
        net.save(tmp)
    plot_history(out_dir / "history.csv", out_dir / "history.png", tensorboard_dir)
    return {"model": "model.keras", "epochs_run": epochs_run,
            "best_val_auc": float(np.nanmax(val_auc)) if val_auc else float("nan"),
            "parameters": int(net.count_params())}
