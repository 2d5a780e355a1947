"""Integrated Gradients (Sundararajan et al., 2017), batched over images and path steps.

IG explains the model output itself (components/explain/scores.py): it integrates along
the whole path, so the saturation that makes Grad-CAM take a sigmoid head's logit does
not hurt it, and explaining the probability lets the completeness check compare the
attributions with what the model outputs.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from scipy import ndimage

from components.explain.scores import (
    class_scores,
    explained_classes,
    model_outputs,
    normalize_positive,
    select_scores,
    smooth,
)

# --------------------------------------------------------------------------- baselines

# The baselines --ig_baseline offers (docs/benchmarks.md: the measured comparison on
# synthetic_cxr).
BASELINES = ("black", "blur", "uniform")
# The reference input unless told otherwise (--ig_baseline): "blur" localized best on
# synthetic_cxr and passes both randomization checks (benchmarks/ig_baselines.py,
# docs/benchmarks.md).
DEFAULT_BASELINE = "blur"
UNIFORM_DRAWS = 4


def make_baseline(
    images: np.ndarray,
    baseline: str | float | np.ndarray = DEFAULT_BASELINE,
    blur_sigma: float | None = None,
) -> np.ndarray:
    """The IG reference input, same shape as `images`.

    "black": zeros (raw pixel 0). "blur" (or "blurred"): a Gaussian-blurred copy of each
    image (sigma `blur_sigma` pixels, default max(h, w) / 16), which removes fine structure
    but keeps the overall intensity, so only edges and texture get attribution. A number:
    a constant image. An array: used as is (broadcast to the images' shape). "uniform" is
    not one baseline but several noise images: see integrated_gradients_raw.
    """
    images = np.asarray(images, dtype="float32")
    if isinstance(baseline, str):
        if baseline == "black":
            return np.zeros_like(images)
        if baseline in ("blur", "blurred"):
            sigma = blur_sigma if blur_sigma is not None else max(images.shape[1:3]) / 16.0
            return ndimage.gaussian_filter(
                images, sigma=(0, sigma, sigma, 0), mode="nearest"
            ).astype("float32")
        raise ValueError(
            f"unknown baseline {baseline!r}: use 'black', 'blur', 'uniform', a number or an array"
        )
    return np.broadcast_to(np.asarray(baseline, dtype="float32"), images.shape).copy()


# --------------------------------------------------------------------------- IG


@tf.function(reduce_retracing=True)
def _weighted_path_gradients(model, images, baselines, image_ids, alphas, weights, classes):
    """Sum over a chunk of (image, step) pairs of weight * d score / d input, per image."""
    x = tf.gather(images, image_ids)
    b = tf.gather(baselines, image_ids)
    a = tf.reshape(alphas, [-1, 1, 1, 1])
    with tf.GradientTape() as tape:
        path = b + a * (x - b)
        tape.watch(path)
        # Each image's score depends only on its own input (inference mode), so the
        # gradient of the sum is every path point's own gradient.
        scores = select_scores(model(path, training=False), tf.gather(classes, image_ids))
    gradients = tape.gradient(scores, path) * tf.reshape(weights, [-1, 1, 1, 1])
    return tf.math.unsorted_segment_sum(gradients, image_ids, tf.shape(images)[0])


def integrated_gradients_with_completeness(
    model: keras.Model,
    images: np.ndarray,
    *,
    baseline: str | float | np.ndarray = DEFAULT_BASELINE,
    steps: int = 64,
    max_batch: int = 32,
    class_index: int | None = None,
    blur_sigma: float | None = None,
    eps: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray]:
    """Signed IG attributions (n, h, w, c) and each image's relative completeness gap (n,).

    attribution = (x - b) * integral_0^1 d f(b + a (x - b)) / dx da, the integral by the
    trapezoid rule over `steps` intervals (steps + 1 gradient evaluations). f is the model
    output (probability) of the explained class, see the module docstring. All images'
    path points are flattened into one list and evaluated `max_batch` at a time, which
    bounds memory whatever n and steps are.

    Completeness (the IG axiom): sum(attribution) = f(x) - f(b). The gap returned is
    |sum attr - (f(x) - f(b))| / max(|f(x) - f(b)|, eps); it shrinks as steps grow and
    above ~0.05 says the path integral is under-resolved (use more steps).
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    images = np.asarray(images, dtype="float32")
    baselines = make_baseline(images, baseline, blur_sigma)
    n = len(images)
    outputs = model_outputs(model, images)
    classes = explained_classes(outputs, class_index)
    f_x = np.asarray(select_scores(outputs, classes), dtype="float64")
    f_b = class_scores(model, baselines, classes)

    alphas = np.linspace(0.0, 1.0, steps + 1, dtype="float32")
    weights = np.full(steps + 1, 1.0 / steps, dtype="float32")
    weights[[0, -1]] *= 0.5  # trapezoid rule
    image_ids = np.repeat(np.arange(n, dtype="int32"), steps + 1)
    step_ids = np.tile(np.arange(steps + 1), n)

    x_t, b_t, c_t = tf.constant(images), tf.constant(baselines), tf.constant(classes)
    average_gradients = np.zeros(images.shape, dtype="float64")
    for start in range(0, len(image_ids), max_batch):
        ids = image_ids[start : start + max_batch]
        steps_here = step_ids[start : start + max_batch]
        average_gradients += np.asarray(
            _weighted_path_gradients(
                model,
                x_t,
                b_t,
                tf.constant(ids),
                tf.constant(alphas[steps_here]),
                tf.constant(weights[steps_here]),
                c_t,
            ),
            dtype="float64",
        )
    attributions = (images - baselines).astype("float64") * average_gradients

    difference = f_x - np.asarray(f_b, dtype="float64")
    total = attributions.reshape(n, -1).sum(axis=1)
    gap = np.abs(total - difference) / np.maximum(np.abs(difference), eps)
    return attributions.astype("float32"), gap


def integrated_gradients_raw(
    model: keras.Model,
    images: np.ndarray,
    *,
    baseline: str | float | np.ndarray = DEFAULT_BASELINE,
    baseline_draws: int = UNIFORM_DRAWS,
    seed: int = 0,
    **options,
) -> np.ndarray:
    """Signed IG attributions (n, h, w, c); options as integrated_gradients_with_completeness.

    baseline="uniform": the mean of the attributions from `baseline_draws` baselines of
    uniform noise over [0, 255] (seeded), the noise-averaged IG of Sturmfels et al.,
    "Visualizing the Impact of Feature Attribution Baselines" (Distill 2020): no single
    reference intensity, so no pixel gets attribution only for differing from it. Each
    draw's path takes 64 / `baseline_draws` steps unless `steps` is given, so the cost is
    one 64-step path's.
    """
    if isinstance(baseline, str) and baseline == "uniform":
        options.setdefault("steps", max(1, 64 // baseline_draws))
        images = np.asarray(images, dtype="float32")
        rng = np.random.default_rng(seed)
        total = np.zeros(images.shape, dtype="float64")
        for _ in range(baseline_draws):
            noise = rng.uniform(0.0, 255.0, images.shape).astype("float32")
            total += integrated_gradients_with_completeness(
                model, images, baseline=noise, **options
            )[0]
        return (total / baseline_draws).astype("float32")
    return integrated_gradients_with_completeness(model, images, baseline=baseline, **options)[0]


def integrated_gradients(
    model: keras.Model, images: np.ndarray, *, smooth_sigma: float = 0.0, **options
) -> np.ndarray:
    """IG heatmaps (n, h, w) in [0, 1]: attributions summed over channels, positive part,
    divided by each image's peak; optionally Gaussian-smoothed by `smooth_sigma` pixels.

    Unsmoothed by default, because smoothing fails the sanity check: IG multiplies the
    gradient by (image - baseline), and a blurred map keeps mostly that brightness envelope,
    which no weight changes. On our trained CNNs the maps of a fully randomized model
    correlated with the trained model's at Spearman 0.57-0.73 with sigma 1 (0.69-0.83 with
    sigma 2), and 0.07 unsmoothed.

    Options: baseline ("black" | "blur" | "uniform" | number | array), steps (64),
    max_batch (32), class_index, blur_sigma, baseline_draws and seed (for "uniform");
    see integrated_gradients_raw and integrated_gradients_with_completeness.
    """
    attributions = integrated_gradients_raw(model, images, **options)
    positive = np.maximum(attributions.sum(axis=-1), 0.0)
    return normalize_positive(smooth(positive, smooth_sigma))
