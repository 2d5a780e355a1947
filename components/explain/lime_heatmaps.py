"""LIME (Ribeiro et al., 2016) for the grayscale CNNs, with the `lime` package.

LIME explains one image at a time (its perturbations are built around that image), so
the images are explained in a loop; within an image the work is batched:

* `_BatchedLimeImageExplainer` replaces lime's `data_labels`, which builds every
  perturbed image in a Python loop over samples and superpixels (and shows a tqdm bar),
  by one vectorized `np.where` per batch, on one channel of the replicated grayscale.
  It draws the same random numbers in the same order as lime's own
  (random_state.randint(0, 2, num_samples * n_features), first row all ones), so
  explanations match lime's for the same seed; everything else (the kernel, the ridge
  regression, ImageExplanation) is lime's.
* the classifier function makes one model call per LIME batch (`batch_size`
  perturbations, default 100), converting lime's RGB perturbations back to the model's
  single channel. The call is a compiled model(x, training=False) rather than
  model.predict: same outputs, without predict's per-call tf.data set-up, which cost
  ~20% of LIME's time on 128 x 128 images.

Superpixels: SLIC on the grayscale image itself (`channel_axis=None`), scaled to [0, 1],
with fairly compact segments: a radiograph has soft intensity edges, and quickshift's
colour-space defaults (lime's default) fragment it into slivers along rib edges.

"Hidden" superpixels are filled with a constant, the image's mean by default. lime's own
default (hide_color=None: each superpixel's own mean) changes nothing in a region of
nearly uniform brightness, such as an opacity, so LIME would miss exactly that evidence.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import keras
import numpy as np
from lime import lime_image
from skimage.segmentation import mark_boundaries, slic

from components.explain.scores import explained_classes, model_outputs, normalize_positive


class _BatchedLimeImageExplainer(lime_image.LimeImageExplainer):
    def data_labels(self, image, fudged_image, segments, classifier_fn, num_samples, batch_size=10):
        n_features = np.unique(segments).shape[0]
        data = self.random_state.randint(0, 2, num_samples * n_features).reshape(
            (num_samples, n_features)
        )
        data[0, :] = 1
        # Our images are grayscale replicated to RGB for lime: perturb one channel only (a
        # third of the memory traffic); the classifier takes (b, h, w, 1) as it is.
        gray, fudged_gray = image[..., :1], fudged_image[..., :1]

        def perturbed(start: int) -> np.ndarray:
            keep = data[start : start + batch_size][:, segments].astype(bool)  # (b, h, w)
            return np.where(keep[..., None], gray[None], fudged_gray[None])

        # The next batch is built while the model runs on this one (both release the GIL).
        starts = list(range(0, num_samples, batch_size))
        labels = []
        with ThreadPoolExecutor(max_workers=1) as builder:
            pending = builder.submit(perturbed, starts[0])
            for following in starts[1:] + [None]:
                batch = pending.result()
                if following is not None:
                    pending = builder.submit(perturbed, following)
                labels.append(np.asarray(classifier_fn(batch)))
        return data, np.concatenate(labels)


def grayscale_slic(
    n_segments: int = 50, compactness: float = 0.1, sigma: float = 1.0
) -> Callable[[np.ndarray], np.ndarray]:
    """A LIME segmentation_fn: SLIC superpixels of a grayscale image given as (h, w, 3)
    (lime's replicated copy) or (h, w), labels 0..k-1 as lime requires."""

    def segment(image: np.ndarray) -> np.ndarray:
        gray = np.asarray(image, dtype="float64")
        gray = gray[..., 0] if gray.ndim == 3 else gray
        span = gray.max() - gray.min()
        scaled = (gray - gray.min()) / span if span > 0 else np.zeros_like(gray)
        labels = slic(
            scaled,
            n_segments=n_segments,
            compactness=compactness,
            sigma=sigma,
            channel_axis=None,
            start_label=0,
            enforce_connectivity=True,
        )
        return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)

    return segment


def _classifier(model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    """lime's classifier_fn: (b, h, w, 3) RGB or (b, h, w, 1) gray -> (b, k) probabilities,
    one model call.

    A one-unit sigmoid head becomes two columns [1 - p, p], so label 1 is the positive class.
    """
    channels = model.inputs[0].shape[-1]

    def classify(pixels: np.ndarray) -> np.ndarray:
        gray = (pixels if pixels.shape[-1] == 1 else pixels.mean(axis=-1, keepdims=True)).astype(
            "float32", copy=False
        )
        batch = np.repeat(gray, channels, axis=-1) if channels != 1 else gray
        p = model_outputs(model, batch, max_batch=len(batch))
        return np.concatenate([1.0 - p, p], axis=1) if p.shape[1] == 1 else p

    return classify


def _hide_value(image: np.ndarray, hide_color: str | float) -> float:
    if hide_color == "mean":
        return float(image.mean())
    if hide_color in ("zero", "black"):
        return 0.0
    return float(hide_color)


def lime_explanations(
    model: keras.Model,
    images: np.ndarray,
    *,
    num_samples: int = 300,
    batch_size: int = 100,
    seed: int = 0,
    class_index: int | None = None,
    n_segments: int = 50,
    compactness: float = 0.1,
    hide_color: str | float = "mean",
    kernel_width: float = 0.25,
    segmentation_fn: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, list[lime_image.ImageExplanation], np.ndarray]:
    """Signed LIME weight maps (n, h, w), lime's ImageExplanation objects, and the label
    each explanation is about (n,) (the key into explanation.local_exp).

    Each image gets a fresh explainer seeded with `seed`, so an image's explanation does
    not depend on which other images are in the batch. hide_color: "mean" (the image's
    mean pixel), "zero", or a raw pixel value.
    """
    images = np.asarray(images, dtype="float32")
    classes = explained_classes(model_outputs(model, images), class_index)
    single_unit = model.outputs[0].shape[-1] == 1
    labels = np.ones_like(classes) if single_unit else classes
    segment = segmentation_fn or grayscale_slic(n_segments, compactness)
    classify = _classifier(model)
    weight_maps, explanations = [], []
    for image, label in zip(images, labels):
        explainer = _BatchedLimeImageExplainer(kernel_width=kernel_width, random_state=seed)
        rgb = np.repeat(image[..., :1], 3, axis=-1)  # float32: half the memory of float64
        explanation = explainer.explain_instance(
            rgb,
            classify,
            labels=(int(label),),
            hide_color=_hide_value(image, hide_color),
            top_labels=None,
            num_samples=num_samples,
            batch_size=batch_size,
            segmentation_fn=segment,
            random_seed=seed,
        )
        weights = np.zeros(explanation.segments.max() + 1)
        for feature, weight in explanation.local_exp[int(label)]:
            weights[feature] = weight
        weight_maps.append(weights[explanation.segments])
        explanations.append(explanation)
    return np.stack(weight_maps).astype("float32"), explanations, labels


def lime_raw(model: keras.Model, images: np.ndarray, **options) -> np.ndarray:
    """Signed per-pixel LIME weights (n, h, w): each superpixel's weight on its pixels."""
    return lime_explanations(model, images, **options)[0]


def lime_heatmaps(model: keras.Model, images: np.ndarray, **options) -> np.ndarray:
    """LIME heatmaps (n, h, w) in [0, 1]: positive superpixel weights of the explained
    class, divided by each image's largest. Options as lime_explanations (num_samples=300,
    seed=0, class_index, n_segments=50, hide_color="mean", ...)."""
    return normalize_positive(lime_raw(model, images, **options))


def lime_overlay(
    image: np.ndarray,
    explanation: lime_image.ImageExplanation,
    label: int | None = None,
    num_features: int = 8,
    alpha: float = 0.45,
    min_weight: float = 0.0,
) -> np.ndarray:
    """The classic LIME figure, (h, w, 3) uint8: the `num_features` superpixels with the
    largest |weight| tinted green (for the class) or red (against it), outlined, over the
    grayscale image. `label` defaults to the (only) label the explanation holds."""
    label = next(iter(explanation.local_exp)) if label is None else label
    _, mask = explanation.get_image_and_mask(
        label,
        positive_only=False,
        negative_only=False,
        hide_rest=False,
        num_features=num_features,
        min_weight=min_weight,
    )
    image = np.asarray(image, dtype="float64")
    gray = image[..., 0] if image.ndim == 3 else image
    rgb = np.repeat(np.clip(gray / 255.0, 0, 1)[..., None], 3, axis=-1)
    for sign, colour in ((1, (0.0, 1.0, 0.0)), (-1, (1.0, 0.0, 0.0))):
        region = mask == sign
        rgb[region] = (1 - alpha) * rgb[region] + alpha * np.asarray(colour)
    outlined = mark_boundaries(rgb, mask, color=(1.0, 1.0, 0.0), mode="inner")
    return np.uint8(np.round(255 * np.clip(outlined, 0, 1)))
