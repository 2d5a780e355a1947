"""Occlusion sensitivity (Zeiler & Fergus, 2014), batched.

A square patch slides over the image; each occluded copy is scored and the drop of the
explained score (the model output, as for the other methods) is credited to the patch.
All (image, patch position) pairs are flattened into one list and scored `max_batch`
copies per model call, so the whole batch of images costs ceil(n * positions /
max_batch) calls.

Per-pixel map (the upsampling to input size): each pixel gets the mean drop of the
patches that cover it. Positions run every `stride` pixels and always include the last
row and column, so every pixel is covered.
"""

from __future__ import annotations

import keras
import numpy as np

from components.explain.scores import (
    explained_classes,
    model_outputs,
    normalize_positive,
    select_scores,
)


def _starts(length: int, size: int, stride: int) -> np.ndarray:
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return np.asarray(starts)


def patch_masks(height: int, width: int, size: int, stride: int) -> np.ndarray:
    """(positions, h, w) float32 masks, 1 inside each patch."""
    rows, cols = _starts(height, size, stride), _starts(width, size, stride)
    r = np.arange(height)[None, :, None]
    c = np.arange(width)[None, None, :]
    top = np.repeat(rows, len(cols))[:, None, None]
    left = np.tile(cols, len(rows))[:, None, None]
    return ((r >= top) & (r < top + size) & (c >= left) & (c < left + size)).astype("float32")


def occlusion_raw(
    model: keras.Model,
    images: np.ndarray,
    *,
    size: int | None = None,
    stride: int | None = None,
    fill: str | float = "mean",
    class_index: int | None = None,
    max_batch: int = 128,
) -> np.ndarray:
    """Signed occlusion maps (n, h, w): mean score drop of the patches covering each pixel
    (positive = occluding it lowers the explained score).

    size: patch side in pixels, default max(h, w) // 8 (16 on 128 x 128); stride: default
    size // 2. fill: "mean" (each image's mean pixel), "zero", or a raw pixel value.
    """
    images = np.asarray(images, dtype="float32")
    n, h, w = images.shape[:3]
    size = size or max(max(h, w) // 8, 1)
    size = min(size, h, w)
    stride = stride or max(size // 2, 1)
    masks = patch_masks(h, w, size, stride)  # (p, h, w)
    if fill == "mean":
        fills = images.mean(axis=(1, 2, 3))
    elif fill in ("zero", "black"):
        fills = np.zeros(n, dtype="float32")
    else:
        fills = np.full(n, float(fill), dtype="float32")

    outputs = model_outputs(model, images, max_batch)
    classes = explained_classes(outputs, class_index)
    original = np.asarray(select_scores(outputs, classes))

    positions = len(masks)
    image_ids = np.repeat(np.arange(n), positions)
    mask_ids = np.tile(np.arange(positions), n)
    occluded_scores = np.empty(n * positions, dtype="float64")
    for start in range(0, n * positions, max_batch):
        ids, m = image_ids[start : start + max_batch], masks[mask_ids[start : start + max_batch]]
        m = m[..., None]
        batch = images[ids] * (1.0 - m) + fills[ids, None, None, None] * m
        scores = select_scores(model_outputs(model, batch, max_batch), classes[ids])
        occluded_scores[start : start + len(ids)] = np.asarray(scores)

    drops = original[:, None] - occluded_scores.reshape(n, positions)  # (n, p)
    flat = masks.reshape(positions, -1)
    coverage = flat.sum(axis=0)
    return ((drops @ flat) / coverage).reshape(n, h, w).astype("float32")


def occlusion(model: keras.Model, images: np.ndarray, **options) -> np.ndarray:
    """Occlusion heatmaps (n, h, w) in [0, 1]: positive score drop, divided by each
    image's peak. Options as occlusion_raw (size, stride, fill="mean", class_index, max_batch)."""
    return normalize_positive(occlusion_raw(model, images, **options))
