"""Training settings shared by the Trainers and the Tuner: balanced class weights, and how
an image model is compiled (optimizer, loss, logged metrics), so a tuned model and a
trained one (both fine-tuning phases) are measured alike.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from models.losses import make_loss


def class_weights(class_counts: Sequence[int]) -> dict[int, float]:
    """'Balanced' weights n / (k * n_c) from per-class counts: each class weighs alike."""
    labels = np.repeat(np.arange(len(class_counts)), class_counts)
    weights = compute_class_weight("balanced", classes=np.unique(labels), y=labels)
    return {int(c): float(w) for c, w in zip(np.unique(labels), weights)}


def training_metrics(num_classes: int) -> list[keras.metrics.Metric]:
    if num_classes == 2:
        return [
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.AUC(name="auc"),
            keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall"),
        ]
    return [
        keras.metrics.CategoricalAccuracy(name="accuracy"),
        keras.metrics.AUC(name="auc"),
        keras.metrics.Precision(name="precision"),
        keras.metrics.Recall(name="recall"),
    ]


def compile_for_training(
    model: keras.Model,
    num_classes: int,
    learning_rate: float,
    loss: str = "focal",
    focal_gamma: float = 2.0,
    focal_alpha: float = 0.5,
) -> keras.Model:
    """Adam at `learning_rate`, the chosen loss (models/losses.py), training_metrics."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=make_loss(num_classes, loss, focal_gamma, focal_alpha),
        metrics=training_metrics(num_classes),
    )
    return model
