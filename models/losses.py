"""The loss choice, in one place: cross-entropy (the pipeline's default) or focal loss.

Focal loss (Lin et al., 2017) down-weights the many easy examples (clear pneumonia) so
training attends to the hard ones, but it also pulls scores toward the middle: with class
weights, the default CNN's held-out ECE was 0.12 against 0.03 with cross-entropy at the
same accuracy (benchmarks/shift.py, docs/benchmarks.md), so cross-entropy is the pipeline's default
and focal loss the option. Keras ships both; we only pick the variant for the task.

A multi-label head (one sigmoid per finding) takes binary cross-entropy per finding,
each finding's positives and negatives weighted to count alike (`FindingWeightedCrossentropy`:
Keras' BinaryCrossentropy takes one weight per image, not per finding), or Keras' binary
focal loss with its alpha balancing.
"""

from __future__ import annotations

from typing import Sequence

import keras

LOSSES = ("focal", "cross_entropy")
DEFAULT_LOSS = "cross_entropy"


@keras.saving.register_keras_serializable(package="pipeline")
class FindingWeightedCrossentropy(keras.losses.Loss):
    """Binary cross-entropy of each finding's sigmoid, positives weighted by
    `positive_weights[j]` and negatives by `negative_weights[j]`, averaged over findings.

    Keras' own losses weigh whole images (sample_weight) or one alpha for every unit;
    a rare finding (9 Hernia images in 783) needs its own weight, so the per-element
    cross-entropy (keras.ops.binary_crossentropy) is weighted here.
    """

    def __init__(
        self,
        positive_weights: Sequence[float],
        negative_weights: Sequence[float],
        name: str = "finding_weighted_crossentropy",
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.positive_weights = [float(w) for w in positive_weights]
        self.negative_weights = [float(w) for w in negative_weights]

    def call(self, y_true, y_pred):
        """Per image: the mean over findings of binary cross-entropy, weighted by the finding's
        positive or negative weight as the label is 1 or 0."""
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        per_element = keras.ops.binary_crossentropy(y_true, y_pred)
        positive = keras.ops.convert_to_tensor(self.positive_weights, dtype=y_pred.dtype)
        negative = keras.ops.convert_to_tensor(self.negative_weights, dtype=y_pred.dtype)
        weights = y_true * positive + (1.0 - y_true) * negative
        return keras.ops.mean(weights * per_element, axis=-1)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "positive_weights": self.positive_weights,
            "negative_weights": self.negative_weights,
        }


def make_loss(
    num_classes: int,
    kind: str = DEFAULT_LOSS,
    gamma: float = 2.0,
    alpha: float = 0.5,
    multilabel: bool = False,
    finding_weights: tuple[Sequence[float], Sequence[float]] | None = None,
) -> keras.losses.Loss:
    """Binary (sigmoid, 1 unit) or categorical (softmax, one-hot labels) loss; with
    `multilabel`, per-finding binary cross-entropy (weighted by `finding_weights`,
    (negative weights, positive weights), when given) or binary focal loss."""
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r} (focal or cross_entropy)")
    if multilabel:
        if kind == "focal":
            return keras.losses.BinaryFocalCrossentropy(
                apply_class_balancing=True, alpha=alpha, gamma=gamma
            )
        if finding_weights is None:
            return keras.losses.BinaryCrossentropy()
        negative, positive = finding_weights
        return FindingWeightedCrossentropy(positive, negative)
    if num_classes == 2:
        if kind == "cross_entropy":
            return keras.losses.BinaryCrossentropy()
        # alpha weighs positives vs negatives; 0.5 treats them alike, leaving the class
        # imbalance to class weights.
        return keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=True, alpha=alpha, gamma=gamma
        )
    if kind == "cross_entropy":
        return keras.losses.CategoricalCrossentropy()
    return keras.losses.CategoricalFocalCrossentropy(alpha=alpha, gamma=gamma)
