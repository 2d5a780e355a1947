"""Explainer: heatmaps for a fixed selection of test images, as PNGs and TensorBoard images.

Selection: a few true/false positives and negatives at the Evaluator's threshold, so a
reader sees what the model attends to when it is right and when it is wrong.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import keras
import matplotlib
import numpy as np
import pandas as pd
import tensorflow as tf
from PIL import Image
from tqdm import tqdm

from components.artifacts import atomic_path, read_json, write_json
from components.pneumonia.evaluator import load_trained_model
from components.explain.activations import activation_view
from components.explain.gradcam import grad_cam, grad_cam_plus_plus
from components.explain.integrated_gradients import integrated_gradients
from components.explain.lime_heatmaps import lime_heatmaps
from components.explain.occlusion import occlusion
from components.explain.shap_heatmaps import shap_heatmaps
from components.explain.faithfulness import deletion_insertion, faithfulness_report, plot_faithfulness
from components.reporting.figures import log_images, save_figure
from components.reporting.explanation_report import write_explainer_report
from components.explain.localization import load_masks, localization_report
from components.explain.sanity_checks import data_randomization, sanity_report

METHODS: dict[str, Callable[[keras.Model, np.ndarray], np.ndarray]] = {
    "gradcam": grad_cam,
    "gradcam_plus_plus": grad_cam_plus_plus,
    "integrated_gradients": integrated_gradients,
    "lime": lime_heatmaps,
    "shap": shap_heatmaps,
    "occlusion": occlusion,
}
# Methods cheap enough to recompute for every randomized layer in the sanity checks.
GRADIENT_METHODS = ("gradcam", "gradcam_plus_plus", "integrated_gradients")
OUTCOMES = ("true_positive", "true_negative", "false_positive", "false_negative")


def select_cases(predictions: pd.DataFrame, threshold: float, per_outcome: int) -> pd.DataFrame:
    """Up to `per_outcome` test images of each outcome, most confident first."""
    test = predictions[predictions["split"] == "test"].copy()
    positive = test["label"] != "NORMAL"
    flagged = test["score"] >= threshold
    test["outcome"] = np.select(
        [positive & flagged, ~positive & ~flagged, ~positive & flagged, positive & ~flagged],
        list(OUTCOMES), default="")
    test["confidence"] = (test["score"] - threshold).abs()
    picked = (test.sort_values(["outcome", "confidence", "path"], ascending=[True, False, True])
              .groupby("outcome").head(per_outcome))
    return picked.reset_index(drop=True)


def load_images(paths: list[str], image_size: int) -> np.ndarray:
    """The selected files through the Transform's own decoder: (n, size, size, 1) float."""
    from components.pneumonia.transform import decode_and_resize

    return np.stack([decode_and_resize(tf.constant(p), image_size).numpy() for p in paths]
                    ).astype("float32")


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """A jet-coloured heatmap over the grayscale image: (h, w, 3) uint8."""
    gray = np.repeat(image[..., :1] / 255.0, 3, axis=-1)
    colour = matplotlib.colormaps["jet"](heatmap)[..., :3]
    return np.uint8(255 * np.clip((1 - alpha) * gray + alpha * colour, 0, 1))


def plot_panel(image: np.ndarray, overlays: dict[str, np.ndarray], title: str):
    """original | one overlay per method, side by side, for one image."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(overlays) + 1, figsize=(2.6 * (len(overlays) + 1), 3.0))
    axes[0].imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
    axes[0].set_title("original", fontsize=9)
    for ax, (method, picture) in zip(axes[1:], overlays.items()):
        ax.imshow(picture)
        ax.set_title(method, fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return fig


def localization_cases(examples: Path, predictions: pd.DataFrame, limit: int) -> pd.DataFrame:
    """Test pneumonia images with a known lesion mask (synthetic_cxr), at most `limit`."""
    frame = pd.read_csv(examples / "examples.csv", keep_default_na=False)
    if "mask_path" not in frame:
        return frame.iloc[:0]
    test = frame[(frame["split"] == "test") & (frame["label"] != "NORMAL") & (frame["mask_path"] != "")]
    return test.sort_values("path").head(limit).reset_index(drop=True)


def training_sample(transform: Path, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random sample of the saved train split: (images float32, integer labels)."""
    spec = read_json(transform / "transform.json")
    ds = (tf.data.Dataset.load(os.fspath(transform / "train"))
          .shuffle(spec["counts"]["train"], seed=seed).take(size))
    images, labels = zip(*((x, y) for x, y, _ in ds.as_numpy_iterator()))
    return np.stack(images).astype("float32"), np.asarray(labels)


def run(
    out_dir: Path,
    *,
    examples: Path,
    transform: Path,
    trainer: Path,
    evaluator: Path,
    methods: tuple[str, ...] = ("gradcam",),
    per_outcome: int = 2,
    faithfulness: bool = True,
    sanity_checks: bool = False,
    data_randomization_images: int = 256,
    data_randomization_epochs: int = 10,
    localization_images: int = 64,
    seed: int = 42,
    progress: bool = False,
    tensorboard_dir: Path | None = None,
) -> dict[str, Any]:
    """The Explainer component.

    Writes explainer/<method>/*.png overlays and panels/*.png (original | every method)
    for a fixed selection of test cases, all also as TensorBoard images; faithfulness.json
    (deletion/insertion against random order); localization.json where lesion masks are
    known (synthetic_cxr); sanity.json with `sanity_checks` (cascading randomization, and
    data randomization: the same architecture trained from scratch on a seeded sample of
    `data_randomization_images` training images, with true and with permuted labels, for
    `data_randomization_epochs` epochs each); report.html with all of it.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown explanation method(s) {unknown}; available: {sorted(METHODS)}")
    spec = read_json(transform / "transform.json")
    metrics = read_json(evaluator / "metrics.json")
    predictions = pd.read_csv(evaluator / "predictions.csv", keep_default_na=False)
    if "score" not in predictions:  # three-class: explain the predicted class
        predictions["score"] = predictions[[c for c in predictions if c.startswith("score_")]].max(axis=1)
    cases = select_cases(predictions, metrics["threshold"] or 0.5, per_outcome)
    model = load_trained_model(trainer)
    images = load_images(cases["path"].tolist(), spec["image_size"])
    names = [f"{case.outcome}_{Path(case.path).stem}" for case in cases.itertuples()]
    maps: dict[str, np.ndarray] = {}
    overlays: dict[str, np.ndarray] = {}
    for method in tqdm(methods, desc="explaining", unit="method", disable=not progress):
        maps[method] = METHODS[method](model, images)
        overlays[method] = np.stack([overlay(img, hm) for img, hm in zip(images, maps[method])])
        (out_dir / method).mkdir(parents=True, exist_ok=True)
        for name, picture in zip(names, overlays[method]):
            with atomic_path(out_dir / method / f"{name}.png") as tmp:
                Image.fromarray(picture).save(tmp, format="PNG")
        log_images(tensorboard_dir, f"{method}/test_overlays", overlays[method],
                   max_outputs=len(names))
    (out_dir / "panels").mkdir(exist_ok=True)
    for i, case in enumerate(cases.itertuples()):
        title = f"{Path(case.path).name}: true {case.label}, score {case.score:.2f} ({case.outcome.replace('_', ' ')})"
        save_figure(plot_panel(images[i], {m: overlays[m][i] for m in methods}, title),
                    out_dir / "panels" / f"{names[i]}.png", tensorboard_dir, "panels", step=i)
    result: dict[str, Any] = {"heatmaps": {m: len(names) for m in methods}}
    faithfulness_json = localization_json = sanity = None
    if faithfulness:
        curves = {m: deletion_insertion(model, images, maps[m], seed=seed) for m in methods}
        faithfulness_json = faithfulness_report(curves, steps=20, deletion_baseline="black",
                                                insertion_baseline="blurred")
        write_json(out_dir / "faithfulness.json", faithfulness_json)
        plot_faithfulness(curves, out_dir / "faithfulness.png", tensorboard_dir)
        result["faithfulness"] = {m: {k: v[k] for k in ("deletion_gain", "insertion_gain")}
                                  for m, v in faithfulness_json["methods"].items()}
    lesions = localization_cases(examples, predictions, localization_images)
    if len(lesions):
        lesion_images = load_images(lesions["path"].tolist(), spec["image_size"])
        masks = load_masks(lesions["mask_path"].tolist(), spec["image_size"])
        stems = [Path(p).stem for p in lesions["path"]]
        localization_json = {m: localization_report(METHODS[m](model, lesion_images), masks,
                                                    names=stems) for m in methods}
        write_json(out_dir / "localization.json", localization_json)
        result["pointing_game"] = {m: r["pointing_game"] for m, r in localization_json.items()}
    if sanity_checks:
        # LIME, SHAP and occlusion cost minutes per randomized layer; the check is about the
        # gradient methods, whose dependence on the weights it tests.
        cheap = {m: METHODS[m] for m in methods if m in GRADIENT_METHODS}
        randomized_labels = None
        if data_randomization_images and cheap:
            train_images, train_labels = training_sample(transform, data_randomization_images, seed)
            # clone_model: the same architecture with freshly initialized weights.
            randomized_labels = data_randomization(
                lambda: keras.models.clone_model(model), train_images, train_labels, images,
                cheap, epochs=data_randomization_epochs, seed=seed)
        sanity = sanity_report(model, images, cheap, seed=seed,
                               reference_maps={m: maps[m] for m in cheap},
                               data_randomization_results=randomized_labels,
                               png_path=out_dir / "sanity_cascading.png",
                               tensorboard_dir=tensorboard_dir)
        write_json(out_dir / "sanity.json", sanity)
        result["sanity_checks"] = {m: s["passes"] for m, s in sanity["summary"].items()}
    write_json(out_dir / "cases.json", cases.drop(columns="confidence").to_dict(orient="records"))
    # What each conv block sees in the first selected image (the intermediate-activation view).
    activations = activation_view(model, images[0], out_dir / "activations.png", tensorboard_dir,
                                  title=f"Feature maps per conv block: {names[0]}")
    write_json(out_dir / "activations.json", activations)
    write_explainer_report(out_dir, cases, names, faithfulness_json, localization_json, sanity,
                           activations)
    result["report"] = "report.html"
    return result
