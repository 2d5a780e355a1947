"""Training settings shared by the Trainers and the Tuner: balanced class weights, and how
an image model is compiled (optimizer, loss, logged metrics), so a tuned model and a
trained one (both fine-tuning phases) are measured alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterator, Sequence

import keras
import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from models.losses import DEFAULT_LOSS, make_loss


def class_weights(class_counts: Sequence[int]) -> dict[int, float]:
    """'Balanced' weights n / (k * n_c) from per-class counts: each class weighs alike."""
    labels = np.repeat(np.arange(len(class_counts)), class_counts)
    weights = compute_class_weight("balanced", classes=np.unique(labels), y=labels)
    return {int(c): float(w) for c, w in zip(np.unique(labels), weights)}


def finding_weights(positives: Sequence[int], n: int) -> tuple[list[float], list[float]]:
    """(negative weights, positive weights) per finding: `class_weights` of each finding's
    absent/present counts among `n` training images, so within every finding both count
    alike (a finding without a positive or negative keeps weight 1)."""
    negative, positive = [], []
    for count in positives:
        weights = class_weights([n - count, count]) if 0 < count < n else {0: 1.0, 1: 1.0}
        negative.append(weights[0])
        positive.append(weights[1])
    return negative, positive


def training_metrics(
    num_classes: int, multilabel: bool = False, auc_findings: Sequence[float] | None = None
) -> list[keras.metrics.Metric]:
    """Accuracy, AUC, precision, recall; a multi-label head's AUC is the mean of its
    findings' AUCs (Keras' AUC with multi_label), which early stopping watches, over the
    findings `auc_findings` weighs 1 (Keras counts a finding without a validation
    positive as AUC 0, which would only lower every epoch's figure alike)."""
    if multilabel:
        return [
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.AUC(
                name="auc",
                multi_label=True,
                num_labels=num_classes,
                label_weights=None if auc_findings is None else list(auc_findings),
            ),
            keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall"),
        ]
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


@dataclasses.dataclass(frozen=True)
class MultilabelHead:
    """A multi-label head's training settings: (negative, positive) weights per finding
    for the loss (`finding_weights`; None: unweighted) and the 0/1 weight of each finding
    in the validation AUC early stopping watches (`auc_findings`; None: all)."""

    finding_weights: tuple[Sequence[float], Sequence[float]] | None = None
    auc_findings: Sequence[float] | None = None


def compile_for_training(
    model: keras.Model,
    num_classes: int,
    learning_rate: float,
    loss: str = DEFAULT_LOSS,
    focal_gamma: float = 2.0,
    focal_alpha: float = 0.5,
    multilabel: MultilabelHead | None = None,
) -> keras.Model:
    """Adam at `learning_rate`, the chosen loss (models/losses.py), training_metrics;
    `multilabel`: a head with one sigmoid per finding, and what its loss and AUC weigh."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=make_loss(
            num_classes,
            loss,
            focal_gamma,
            focal_alpha,
            multilabel is not None,
            multilabel.finding_weights if multilabel else None,
        ),
        metrics=training_metrics(
            num_classes, multilabel is not None, multilabel.auc_findings if multilabel else None
        ),
    )
    return model


PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def precision_policy(choice: str) -> str:
    """The Keras dtype policy for `--precision`.

    auto: float32 on every CPU; on GPUs bfloat16 from compute capability 8 (Ampere),
    float16 before it (tensor cores; not measured here). On CPUs bf16 pays only with
    Intel AMX (a 224 px epoch of the default CNN about 2x faster), but it did not keep
    the model's figures: benchmarks/train_default.py on the real data, bf16 against
    float32, gave the same held-out AUC (0.994) and a development-site AUC 0.008 lower
    (0.962 vs 0.970) and ECE 0.170 vs 0.121 (docs/benchmarks.md), over the 0.005 the
    project accepts. `--precision mixed_bfloat16` stays the opt-in for speed.
    """
    if choice not in PRECISIONS:
        raise ValueError(f"unknown --precision {choice!r} ({', '.join(PRECISIONS)})")
    if choice != "auto":
        return choice
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        capability = details.get("compute_capability", (0, 0))
        return "mixed_bfloat16" if capability >= (8, 0) else "mixed_float16"
    return "float32"


@contextlib.contextmanager
def compute_precision(policy: str) -> Iterator[str]:
    """Models built (and compiled) inside compute under `policy`; the global policy is
    restored on leaving, so the input pipeline, the Evaluator and the Explainer that run
    later in the same process compute in float32. A built model keeps its layers'
    policies (they are in its config and its saved file), and compiling a model built
    under mixed_float16 wraps its optimizer in Keras' LossScaleOptimizer."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield policy
    finally:
        keras.config.set_dtype_policy(previous)


def _float32_config(config: Any) -> Any:
    """A model config with every layer's dtype policy replaced by float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            return {**config, "config": {**config["config"], "name": "float32"}}
        return {key: _float32_config(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_float32_config(value) for value in config]
    return config


def is_float32(model: keras.Model) -> bool:
    """Whether every layer, nested models' included, computes in float32."""
    return all(layer.dtype_policy.compute_dtype == "float32" for layer in model._flatten_layers())


def float32_copy(model: keras.Model) -> keras.Model:
    """The same weights in a model whose every layer computes in float32 (the model itself
    when it already does).

    Explanations and their checks run on this: under a mixed policy the layers compute in
    bfloat16 or float16 (8 or 11 bits of mantissa), so gradients (Grad-CAM, Integrated
    Gradients' path integral) are coarse, and NumPy, OpenCV and scikit-learn refuse or
    mishandle bfloat16 arrays. Keras has no call to change a built model's policy; its
    config names the policy of each layer, so the copy is rebuilt from an edited config.
    """
    if is_float32(model):
        return model
    config = keras.saving.serialize_keras_object(model)
    copy = keras.saving.deserialize_keras_object(_float32_config(config), safe_mode=True)
    for target, source in zip(copy.weights, model.weights, strict=True):
        target.assign(np.asarray(source, dtype=target.dtype))
    return copy
