"""Adapting a trained classifier to a deployment site's unlabelled images by self-training
with class-balanced confident pseudo-labels (Lee 2013, "Pseudo-Label"; Zou et al. 2018,
"Unsupervised Domain Adaptation for Semantic Segmentation via Class-Balanced
Self-Training").

Why this method among the unlabelled ones (entropy minimization, CORAL or MMD feature
alignment, domain-adversarial training): it needs nothing of the model but its scores,
so it works alike for every `--model` (the CNN, the CNN-LSTM, the keras.applications
backbones), every `--strategy` and every precision, and the Trainer's loop, callbacks and
validation-based model selection stay exactly as they are. Feature alignment and
adversarial training need a chosen feature layer and a custom train_step per
architecture; entropy minimization, without a class balance, drifts toward the class the
shifted model already over-predicts (here: normals of a new acquisition scored as
pneumonia).

The rule, fixed before any site figure was seen and recorded with every adapted run
(`RULE`): an image's predicted class is the model's argmax (binary: score >= 0.5 is the
positive class), its confidence that class's probability. Per class, the `fraction` most
confident of the images predicted in it get it as their pseudo-label (at least one when
any image is predicted in it); the others get none. Selecting per class, not with one
global confidence threshold, keeps a class the shifted model rarely predicts from being
left out entirely (the "class-balanced" of Zou et al.). With several rounds, round r of R
takes fraction * r / R, rescored by the model the previous round left (Zou et al.'s
growing portion).
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

NO_PSEUDO_LABEL = -1
# The defaults of the Trainer's parameters and of pipelines.pneumonia's --adapt_* flags.
ADAPT_EPOCHS = 3
ADAPT_FRACTION = 0.5
ADAPT_ROUNDS = 1
RULE = (
    "per class, the most confident `fraction` (rounded up) of the images the model "
    "predicts in that class (argmax; binary: score >= 0.5) take it as pseudo-label, the "
    "others none; round r of R uses fraction * r / R, rescored by the previous round's "
    "model; each round trains on train + pseudo-labelled images, validation unchanged"
)


def class_probabilities(scores: np.ndarray) -> np.ndarray:
    """(n, classes) probabilities from a model's outputs: a binary model's one sigmoid
    score s becomes (1 - s, s)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1 or scores.shape[-1] == 1:
        positive = scores.reshape(-1)
        return np.stack([1.0 - positive, positive], axis=1)
    return scores


def predicted_class(probabilities: np.ndarray) -> np.ndarray:
    """Argmax, with a binary tie (0.5) going to the positive class, as thresholds do."""
    if probabilities.shape[1] == 2:
        return (probabilities[:, 1] >= 0.5).astype(np.int64)
    return probabilities.argmax(axis=1)


def class_balanced_pseudo_labels(probabilities: np.ndarray, fraction: float) -> np.ndarray:
    """A pseudo-label per image (class index, or NO_PSEUDO_LABEL), by `RULE`."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction {fraction} is not in (0, 1]")
    predicted = predicted_class(probabilities)
    confidence = probabilities[np.arange(len(predicted)), predicted]
    labels = np.full(len(predicted), NO_PSEUDO_LABEL, dtype=np.int64)
    for c in np.unique(predicted):
        members = np.flatnonzero(predicted == c)
        # Stable sort: equally confident images keep their (file) order, so reruns agree.
        ranked = members[np.argsort(-confidence[members], kind="stable")]
        labels[ranked[: math.ceil(fraction * len(members))]] = c
    return labels


def round_fractions(fraction: float, rounds: int) -> list[float]:
    """The share each round pseudo-labels: fraction * r / rounds for r = 1..rounds."""
    if rounds < 1:
        raise ValueError(f"rounds {rounds} < 1")
    return [fraction * r / rounds for r in range(1, rounds + 1)]


def counts_by_class(labels: np.ndarray, class_names: Sequence[str]) -> dict[str, int]:
    """How many images carry each class (NO_PSEUDO_LABEL not counted)."""
    return {name: int(np.sum(labels == c)) for c, name in enumerate(class_names)}


def predicted_scores(model: keras.Model, batches: tf.data.Dataset) -> np.ndarray:
    """The model's float32 outputs on (images, labels) batches, in order, in inference
    mode. A plain loop (not `predict`), so it runs under every tf.distribute strategy
    with the weights every replica shares."""
    step = tf.function(lambda images: model(images, training=False), reduce_retracing=True)
    outputs = [np.asarray(step(images), dtype=np.float32) for images, _ in batches]
    return np.concatenate(outputs)
