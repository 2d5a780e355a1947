"""Localization of heatmaps against known lesion masks (synthetic phantoms have them).

* Pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", IJCV
  2018): a hit when the heatmap's maximum lies within `tolerance` pixels of the mask. The
  paper uses 15 pixels at 224 px input; we scale that to the image size by default.
* Mask IoU: the heatmap thresholded into a region (see `heatmap_regions`) against the mask.
* Mass inside: the share of the heatmap's total value inside the mask (the
  "energy-based pointing game" of Score-CAM, Wang et al. 2020), threshold-free.

Each figure comes with its chance level, since small lesions make any of them look low
and a generous tolerance makes the pointing game look high: the mask's area fraction
(what a map with its peak at a uniformly random pixel scores in the tolerance-free
pointing game, and what a uniform map scores in mass inside), the share of pixels within
the tolerance of the mask (the same for the tolerant pointing game), and the figures of
seeded uniform-noise maps on the same masks. The pointing game is reported with its
tolerance and without (tolerance 0: the peak pixel itself is a lesion pixel); the
tolerance-free game and mass inside equal Quantus's PointingGame and
RelevanceMassAccuracy (tests/test_saliency_evaluation.py checks it).

Only images with a non-empty mask count (and, when `positives` is given, only positive
images): a normal image has no lesion to point at.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy import ndimage

REFERENCE = (
    "pointing game: Zhang et al., IJCV 2018 (15 px tolerance at 224 px); "
    "mass inside: Wang et al., Score-CAM, CVPRW 2020"
)


def _flat(array: np.ndarray) -> np.ndarray:
    """(n, h*w), also for n = 0 (reshape(0, -1) is ambiguous)."""
    array = np.asarray(array)
    return array.reshape(array.shape[0], int(np.prod(array.shape[1:])))


def default_tolerance(height: int, width: int) -> float:
    """Zhang et al.'s 15 px at 224 px, scaled: about 2 px at 32, 9 px at 128."""
    return 15.0 / 224.0 * max(height, width)


def counted_images(masks: np.ndarray, positives: np.ndarray | None = None) -> np.ndarray:
    """(n,) bool: images that take part (non-empty mask, and positive when labels given)."""
    counted = _flat(masks).any(axis=1)
    if positives is not None:
        counted &= np.asarray(positives, dtype=bool)
    return counted


def peak_positions(heatmaps: np.ndarray) -> np.ndarray:
    """(n, 2) row, column of each map's maximum (the first in raster order on ties)."""
    heatmaps = np.asarray(heatmaps)
    flat = _flat(heatmaps).argmax(axis=1)
    return np.stack(np.unravel_index(flat, heatmaps.shape[1:3]), axis=1)


def pointing_hits(
    heatmaps: np.ndarray, masks: np.ndarray, tolerance: float | None = None
) -> np.ndarray:
    """(n,) bool: the maximum lies within `tolerance` pixels (Euclidean) of a mask pixel.

    Distance to the mask comes from a distance transform of each mask's complement, so a
    tolerance of 0 means the peak pixel itself is a lesion pixel. Empty masks: False.
    """
    masks = np.asarray(masks).astype(bool)
    h, w = masks.shape[1:3]
    tolerance = default_tolerance(h, w) if tolerance is None else tolerance
    hits = np.zeros(len(masks), dtype=bool)
    for i, ((r, c), mask) in enumerate(zip(peak_positions(heatmaps), masks)):
        if mask.any():
            hits[i] = ndimage.distance_transform_edt(~mask)[r, c] <= tolerance
    return hits


def within_tolerance_fraction(masks: np.ndarray, tolerance: float) -> np.ndarray:
    """(n,) share of each image's pixels within `tolerance` pixels of its mask: the
    pointing game's chance level for a peak at a uniformly random pixel."""
    masks = np.asarray(masks).astype(bool)
    return np.array(
        [
            (ndimage.distance_transform_edt(~mask) <= tolerance).mean() if mask.any() else 0.0
            for mask in masks
        ]
    )


def random_map_levels(
    masks: np.ndarray, tolerance: float, *, draws: int = 10, seed: int = 0
) -> dict[str, float]:
    """Pointing game (with and without tolerance) and mass inside of uniform-noise maps
    on the same masks, averaged over `draws` seeded draws: what a map that knows nothing
    about the image scores."""
    masks = np.asarray(masks)
    rng = np.random.default_rng(seed)
    hits, exact, mass = [], [], []
    for _ in range(draws):
        noise = rng.random(masks.shape)
        hits.append(pointing_hits(noise, masks, tolerance).mean())
        exact.append(pointing_hits(noise, masks, 0.0).mean())
        mass.append(mass_inside(noise, masks).mean())
    return {
        "pointing_game": float(np.mean(hits)),
        "pointing_game_no_tolerance": float(np.mean(exact)),
        "mean_mass_inside": float(np.mean(mass)),
        "draws": draws,
        "seed": seed,
    }


def heatmap_regions(
    heatmaps: np.ndarray, *, max_fraction: float | None = 0.5, top_fraction: float | None = None
) -> np.ndarray:
    """The heatmaps thresholded into 0/1 regions, (n, h, w) bool.

    Default: pixels at or above `max_fraction` (0.5) of each map's own maximum, like the
    CAM/Grad-CAM box protocol (which used 0.2 and 0.15 of the max for boxes; a lesion mask
    is tighter than a box, hence 0.5). Alternatively `top_fraction` (e.g. 0.05): each
    map's top 5 % pixels, which makes regions of the same area whatever the map's shape.
    An all-zero map gives an empty region.
    """
    heatmaps = np.asarray(heatmaps, dtype="float64")
    flat = _flat(heatmaps)
    if top_fraction is not None:
        if not 0 < top_fraction <= 1:
            raise ValueError("top_fraction must be in (0, 1]")
        k = max(1, int(round(top_fraction * flat.shape[1])))
        threshold = np.partition(flat, -k, axis=1)[:, -k][:, None]
    elif max_fraction is not None:
        threshold = max_fraction * flat.max(axis=1, keepdims=True)
    else:
        raise ValueError("give max_fraction or top_fraction")
    regions = (flat >= threshold) & (flat > 0)
    return regions.reshape(heatmaps.shape)


def mask_iou(heatmaps: np.ndarray, masks: np.ndarray, **threshold: float | None) -> np.ndarray:
    """(n,) intersection over union of each thresholded heatmap (heatmap_regions options)
    with its mask; 0 where both are empty."""
    regions = _flat(heatmap_regions(heatmaps, **threshold))
    masks = _flat(np.asarray(masks).astype(bool))
    union = (regions | masks).sum(axis=1)
    return np.where(union > 0, (regions & masks).sum(axis=1) / np.maximum(union, 1), 0.0)


def mass_inside(heatmaps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(n,) share of each map's total value inside the mask (0 for an all-zero map)."""
    flat = _flat(np.asarray(heatmaps, dtype="float64"))
    inside = (flat * _flat(np.asarray(masks).astype(bool))).sum(axis=1)
    total = flat.sum(axis=1)
    return np.where(total > 0, inside / np.where(total > 0, total, 1.0), 0.0)


def localization_report(
    heatmaps: np.ndarray,
    masks: np.ndarray,
    positives: np.ndarray | None = None,
    *,
    tolerance: float | None = None,
    max_fraction: float | None = 0.5,
    top_fraction: float | None = None,
    names: Sequence[str] | None = None,
    random_draws: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """JSON-able pointing game (with `tolerance_px` and without), mask IoU and mass inside
    over the counted images, beside their chance levels (for explainer/localization.json);
    metrics are None when no image counts. "chance": the mask's area fraction, the share
    of pixels within the tolerance, and `random_draws` seeded uniform-noise maps' figures
    (random_map_levels). `names` (e.g. file stems) labels the per-image rows."""
    heatmaps = np.asarray(heatmaps)
    masks = np.asarray(masks)
    if heatmaps.shape != masks.shape:
        raise ValueError(f"heatmaps {heatmaps.shape} and masks {masks.shape} differ")
    counted = counted_images(masks, positives)
    h, w = masks.shape[1:3]
    tolerance = default_tolerance(h, w) if tolerance is None else tolerance
    threshold = (
        {"top_fraction": top_fraction, "max_fraction": None}
        if top_fraction is not None
        else {"max_fraction": max_fraction}
    )
    hits = pointing_hits(heatmaps[counted], masks[counted], tolerance)
    exact = pointing_hits(heatmaps[counted], masks[counted], 0.0)
    area = _flat(masks[counted].astype(bool)).mean(axis=1)
    within = within_tolerance_fraction(masks[counted], tolerance)
    ious = mask_iou(heatmaps[counted], masks[counted], **threshold)
    mass = mass_inside(heatmaps[counted], masks[counted])
    labels = list(names) if names is not None else [str(i) for i in range(len(masks))]
    counted_names = [label for label, keep in zip(labels, counted) if keep]

    def mean(values: np.ndarray) -> float | None:
        return float(values.mean()) if len(values) else None

    chance = {
        "mask_area_fraction": mean(area),
        "within_tolerance_fraction": mean(within),
        "random_map": (
            random_map_levels(masks[counted], tolerance, draws=random_draws, seed=seed)
            if counted.any()
            else None
        ),
    }
    return {
        "reference": REFERENCE,
        "n_images": int(len(masks)),
        "n_counted": int(counted.sum()),
        "tolerance_px": float(tolerance),
        "region_threshold": threshold,
        "pointing_game": mean(hits),
        "pointing_game_no_tolerance": mean(exact),
        "mean_iou": mean(ious),
        "mean_mass_inside": mean(mass),
        "chance": chance,
        "per_image": [
            {
                "image": name,
                "hit": bool(hit),
                "hit_no_tolerance": bool(hit0),
                "iou": float(iou),
                "mass_inside": float(m),
                "mask_area_fraction": float(a),
            }
            for name, hit, hit0, iou, m, a in zip(counted_names, hits, exact, ious, mass, area)
        ],
    }


def load_masks(paths: Sequence[str], image_size: int) -> np.ndarray:
    """Mask files (PNG, 0/255 or 0/1; "" = no mask) resized like the images: (n, s, s) uint8.

    Resized with antialiasing and thresholded at half, so a mask keeps its area, unlike a
    nearest-neighbour resize, which drops thin parts at random.
    """
    from PIL import Image

    masks = np.zeros((len(paths), image_size, image_size), dtype=np.uint8)
    for i, path in enumerate(paths):
        if path:
            mask = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
            mask = (mask > 0).astype(np.float32)
            resized = Image.fromarray(mask).resize(
                (image_size, image_size), Image.Resampling.BILINEAR
            )
            masks[i] = np.asarray(resized) >= 0.5
    return masks
