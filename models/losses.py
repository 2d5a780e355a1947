"""The loss choice, in one place: cross-entropy (the pipeline's default) or focal loss.

Focal loss (Lin et al., 2017) down-weights the many easy examples (clear pneumonia) so
training attends to the hard ones, but it also pulls scores toward the middle: with class
weights, the default CNN's held-out ECE was 0.12 against 0.03 with cross-entropy at the
same accuracy (benchmarks/shift.py, docs/benchmarks.md), so cross-entropy is the pipeline's default
and focal loss the option. Keras ships both; we only pick the variant for the task.
"""

from __future__ import annotations

import keras

LOSSES = ("focal", "cross_entropy")
DEFAULT_LOSS = "cross_entropy"


def make_loss(
    num_classes: int, kind: str = DEFAULT_LOSS, gamma: float = 2.0, alpha: float = 0.5
) -> keras.losses.Loss:
    """Binary (sigmoid, 1 unit) or categorical (softmax, one-hot labels) loss."""
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r} (focal or cross_entropy)")
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
