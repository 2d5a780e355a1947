"""SHAP values by expected gradients (Erion et al., 2021): shap.GradientExplainer.

Expected gradients = Integrated Gradients averaged over baselines drawn from a
background set, with a random point on each path: phi = E_{x'~B, a~U(0,1)}[(x - x') *
df/dx(x' + a (x - x'))]. Its attributions sum, in expectation, to f(x) - E_B[f].

Compatibility (shap 0.51, TensorFlow 2.21, Keras 3): GradientExplainer works with a
Keras 3 functional model. It takes the TF >= 2.16 branch (a tf.function gradient with
model(x, training=False), so dropout and batch norm are in inference mode). Two quirks
are handled here, so the Partition-explainer fallback was not needed:
* it calls the model with a one-element list, which Keras 3 warns about on every call
  ("The structure of `inputs` doesn't match the expected structure"); silenced below;
* `rseed` works by np.random.seed on numpy's global generator; the global state is
  saved and restored around the call, so explaining does not reseed the caller's numpy.
It explains the model output (probability) of the chosen unit, like the other methods
here. Internally shap loops over images and batches the `nsamples` path points of one
image `max_batch` at a time, reseeding once per shap_values call. So images are passed
one per call by default (`images_per_call=1`, which costs one extra forward pass per
image): every image then gets the same seeded random stream, and its values do not
depend on which other images are explained with it. With images_per_call > 1 the stream
is shared across a chunk: still deterministic, but dependent on the chunking.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np

from components.explain.scores import explained_classes, model_outputs, normalize_positive


def sample_background(images: np.ndarray, size: int = 16, seed: int = 0) -> np.ndarray:
    """`size` images drawn without replacement, seeded (all of them if fewer)."""
    images = np.asarray(images, dtype="float32")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(images), size=min(size, len(images)), replace=False))
    return images[chosen]


def shap_values(
    model: keras.Model,
    images: np.ndarray,
    background: np.ndarray | None = None,
    *,
    nsamples: int = 64,
    seed: int = 0,
    background_size: int = 16,
    class_index: int | None = None,
    max_batch: int = 32,
    images_per_call: int = 1,
    local_smoothing: float = 0.0,
) -> np.ndarray:
    """Signed SHAP values (n, h, w, c) of the explained class.

    background: reference images (m, h, w, c); None draws `background_size` of `images`
    with `seed` (a single image falls back to a black reference). Same seed, same inputs
    -> same values, image by image (see the module docstring on images_per_call). The class: the positive unit of a sigmoid head; for softmax,
    `class_index` or each image's predicted class.
    """
    images = np.asarray(images, dtype="float32")
    if background is None:
        background = (
            sample_background(images, background_size, seed)
            if len(images) > 1
            else np.zeros_like(images)
        )
    background = np.asarray(background, dtype="float32")
    classes = explained_classes(model_outputs(model, images), class_index)
    import shap  # here, not at the top: it costs every entry point ~0.5 s to import (numba)

    explainer = shap.GradientExplainer(
        model, background, batch_size=max_batch, local_smoothing=local_smoothing
    )
    values = []
    state = np.random.get_state()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The structure of `inputs`")
            for start in range(0, len(images), images_per_call):
                chunk = images[start : start + images_per_call]
                ranks = classes[start : start + images_per_call, None]
                phi, _ = explainer.shap_values(
                    chunk,
                    nsamples=nsamples,
                    ranked_outputs=ranks,
                    output_rank_order="custom",
                    rseed=seed,
                )
                values.append(np.asarray(phi)[..., 0])  # (b, h, w, c, 1): one explained unit
    finally:
        np.random.set_state(state)
    return np.concatenate(values).astype("float32")


def shap_heatmaps(
    model: keras.Model, images: np.ndarray, background: np.ndarray | None = None, **options
) -> np.ndarray:
    """SHAP heatmaps (n, h, w) in [0, 1]: values summed over channels, positive part,
    divided by each image's peak. Options as shap_values (nsamples=64, seed=0, ...)."""
    values = shap_values(model, images, background, **options)
    return normalize_positive(values.sum(axis=-1))
