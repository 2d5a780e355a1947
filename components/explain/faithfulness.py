"""Deletion and insertion curves (Petsiuk et al., "RISE", BMVC 2018), batched.

A heatmap ranks the pixels. Deletion replaces the top-ranked pixels by a baseline in
`steps` equal increments and records the explained score after each: a faithful map
makes it fall fast (low area under the curve). Insertion starts from the baseline and
puts the top-ranked pixels back: the score should rise fast (high area). Both are also
measured with a seeded random pixel order, the reference every map must beat; the
report gives the differences (positive = better than random, for both).

Baselines, as in RISE: deletion to black (raw pixel 0), insertion from a blurred copy.
A blurred start keeps the image's overall brightness, so insertion measures whether the
ranked pixels carry the *structure* the model uses; for a model that only responds to
mean brightness the insertion curve is flat whatever the order (use "black" then).

The explained score is the one the other methods explain (components.explain.integrated_gradients
helpers): the sigmoid probability, or the softmax probability of the class predicted on
the unmodified image (or `class_index`). All (image, step) copies are flattened into one
list and scored `max_batch` per model call.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import keras
import numpy as np

from components.explain.integrated_gradients import make_baseline
from components.explain.scores import explained_classes, model_outputs, select_scores

REFERENCE = "Petsiuk et al., RISE: Randomized Input Sampling for Explanation, BMVC 2018"


def saliency_ranks(heatmaps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rank of each pixel (n, h*w), 0 = most salient.

    Ties (Grad-CAM and normalized maps have large flat zero regions) are broken at random,
    seeded: raster order would delete the top rows first, a bias unrelated to the map.
    """
    flat = np.asarray(heatmaps, dtype="float64").reshape(len(heatmaps), -1)
    tie_break = rng.random(flat.shape)
    order = np.lexsort((tie_break, -flat), axis=-1)  # last key sorts first: saliency, then tie
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None, :], axis=1)
    return ranks


def random_ranks(n: int, pixels: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random pixel order per image, (n, pixels)."""
    return np.argsort(rng.random((n, pixels)), axis=1)


def score_curves(
    model: keras.Model,
    images: np.ndarray,
    ranks: np.ndarray,
    baselines: np.ndarray,
    classes: np.ndarray,
    steps: int,
    mode: str,
    max_batch: int = 128,
) -> np.ndarray:
    """Explained score after each step, (n, steps + 1); step k swaps round(k/steps * h*w)
    pixels, the top-ranked first. mode "deletion": image -> baseline; "insertion":
    baseline -> image."""
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', not {mode!r}")
    n, h, w = images.shape[:3]
    counts = np.round(np.linspace(0, h * w, steps + 1)).astype(np.int64)
    start, end = (images, baselines) if mode == "deletion" else (baselines, images)
    image_ids = np.repeat(np.arange(n), steps + 1)
    step_ids = np.tile(np.arange(steps + 1), n)
    scores = np.empty(n * (steps + 1), dtype="float64")
    for first in range(0, len(image_ids), max_batch):
        ids = image_ids[first : first + max_batch]
        swapped = ranks[ids] < counts[step_ids[first : first + max_batch]][:, None]
        m = swapped.reshape(len(ids), h, w, 1).astype("float32")
        batch = start[ids] * (1.0 - m) + end[ids] * m
        outputs = model_outputs(model, batch, max_batch)
        scores[first : first + len(ids)] = np.asarray(select_scores(outputs, classes[ids]))
    return scores.reshape(n, steps + 1)


def area_under_curve(curves: np.ndarray) -> np.ndarray:
    """Trapezoid area of each curve (n, steps + 1) over x = fraction swapped in [0, 1]."""
    curves = np.asarray(curves, dtype="float64")
    steps = curves.shape[-1] - 1
    return (curves[..., :-1] + curves[..., 1:]).sum(axis=-1) / (2.0 * steps)


def deletion_insertion(
    model: keras.Model,
    images: np.ndarray,
    heatmaps: np.ndarray,
    *,
    steps: int = 20,
    deletion_baseline: str | float | np.ndarray = "black",
    insertion_baseline: str | float | np.ndarray = "blurred",
    blur_sigma: float | None = None,
    random_repeats: int = 1,
    class_index: int | None = None,
    seed: int = 0,
    max_batch: int = 128,
) -> dict[str, np.ndarray]:
    """Deletion and insertion curves and AUCs for `heatmaps`, and for random pixel orders.

    images (n, h, w, c) raw pixels, heatmaps (n, h, w). Baselines as
    components.explain.integrated_gradients.make_baseline ("black", "blurred", a number, an array).
    Returns arrays: fractions (steps+1,); deletion, insertion (n, steps+1); deletion_auc,
    insertion_auc (n,); and random_* the same averaged over `random_repeats` seeded orders.
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    images = np.asarray(images, dtype="float32")
    heatmaps = np.asarray(heatmaps)
    if heatmaps.shape != images.shape[:3]:
        raise ValueError(f"heatmaps {heatmaps.shape} do not match images {images.shape}")
    rng = np.random.default_rng(seed)
    n, h, w = images.shape[:3]
    classes = explained_classes(model_outputs(model, images, max_batch), class_index)
    bases = {
        "deletion": make_baseline(images, deletion_baseline, blur_sigma),
        "insertion": make_baseline(images, insertion_baseline, blur_sigma),
    }
    orders = {
        "": [saliency_ranks(heatmaps, rng)],
        "random_": [random_ranks(n, h * w, rng) for _ in range(random_repeats)],
    }
    result: dict[str, np.ndarray] = {"fractions": np.linspace(0.0, 1.0, steps + 1)}
    for prefix, rank_sets in orders.items():
        for mode, baseline in bases.items():
            curves = np.mean(
                [
                    score_curves(model, images, ranks, baseline, classes, steps, mode, max_batch)
                    for ranks in rank_sets
                ],
                axis=0,
            )
            result[f"{prefix}{mode}"] = curves
            result[f"{prefix}{mode}_auc"] = area_under_curve(curves)
    return result


def faithfulness_summary(result: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """JSON-able means for explainer/faithfulness.json.

    deletion_gain = random deletion AUC - deletion AUC, insertion_gain = insertion AUC -
    random insertion AUC: both positive when the map beats a random order; the per-image
    fractions with a positive gain say how consistently it does.
    """
    deletion_gain = result["random_deletion_auc"] - result["deletion_auc"]
    insertion_gain = result["insertion_auc"] - result["random_insertion_auc"]
    return {
        "n_images": int(len(result["deletion_auc"])),
        "steps": int(len(result["fractions"]) - 1),
        "deletion_auc": float(result["deletion_auc"].mean()),
        "random_deletion_auc": float(result["random_deletion_auc"].mean()),
        "deletion_gain": float(deletion_gain.mean()),
        "deletion_beats_random": float((deletion_gain > 0).mean()),
        "insertion_auc": float(result["insertion_auc"].mean()),
        "random_insertion_auc": float(result["random_insertion_auc"].mean()),
        "insertion_gain": float(insertion_gain.mean()),
        "insertion_beats_random": float((insertion_gain > 0).mean()),
        "mean_curves": {
            key: result[key].mean(axis=0).round(6).tolist()
            for key in ("deletion", "insertion", "random_deletion", "random_insertion")
        },
    }


def faithfulness_report(
    results_by_method: Mapping[str, Mapping[str, np.ndarray]], **settings: Any
) -> dict[str, Any]:
    """explainer/faithfulness.json: the reference, the settings used, a summary per method."""
    return {
        "reference": REFERENCE,
        "lower_is_better": ["deletion_auc"],
        "higher_is_better": ["insertion_auc"],
        "settings": settings,
        "methods": {name: faithfulness_summary(r) for name, r in results_by_method.items()},
    }


def plot_faithfulness(
    results_by_method: Mapping[str, Mapping[str, np.ndarray]],
    png_path: str | os.PathLike,
    tensorboard_dir: str | os.PathLike | None = None,
):
    """Mean deletion and insertion curves per method (solid) and random order (dashed)."""
    from components.reporting.figures import plt, save_figure

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for index, (name, result) in enumerate(results_by_method.items()):
        colour = f"C{index}"
        for ax, mode in zip(axes, ("deletion", "insertion")):
            x = result["fractions"]
            ax.plot(
                x,
                result[mode].mean(0),
                color=colour,
                label=f"{name} (AUC {result[f'{mode}_auc'].mean():.3f})",
            )
            ax.plot(
                x,
                result[f"random_{mode}"].mean(0),
                color=colour,
                ls="--",
                alpha=0.6,
                label=f"{name} random order (AUC {result[f'random_{mode}_auc'].mean():.3f})",
            )
    for ax, mode, better in zip(axes, ("deletion", "insertion"), ("lower", "higher")):
        ax.set_title(f"{mode.capitalize()} ({better} AUC is better)")
        ax.set_xlabel(f"fraction of pixels {'deleted' if mode == 'deletion' else 'inserted'}")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("explained score")
    return save_figure(fig, png_path, tensorboard_dir, tag="faithfulness/deletion_insertion")
