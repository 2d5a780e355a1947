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

from components.artifacts import atomic_path, read_json, write_json
from components.evaluator import load_trained_model
from components.gradcam import grad_cam
from components.integrated_gradients import integrated_gradients
from components.lime_heatmaps import lime_heatmaps
from components.occlusion import occlusion
from components.shap_heatmaps import shap_heatmaps
from components.figures import log_images

METHODS: dict[str, Callable[[keras.Model, np.ndarray], np.ndarray]] = {
    "gradcam": grad_cam,
    "integrated_gradients": integrated_gradients,
    "lime": lime_heatmaps,
    "shap": shap_heatmaps,
    "occlusion": occlusion,
}
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
    from components.transform import decode_and_resize

    return np.stack([decode_and_resize(tf.constant(p), image_size).numpy() for p in paths]
                    ).astype("float32")


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """A jet-coloured heatmap over the grayscale image: (h, w, 3) uint8."""
    gray = np.repeat(image[..., :1] / 255.0, 3, axis=-1)
    colour = matplotlib.colormaps["jet"](heatmap)[..., :3]
    return np.uint8(255 * np.clip((1 - alpha) * gray + alpha * colour, 0, 1))


def explainer(
    out_dir: Path,
    *,
    transform: Path,
    trainer: Path,
    evaluator: Path,
    methods: tuple[str, ...] = ("gradcam",),
    per_outcome: int = 2,
    tensorboard_dir: Path | None = None,
) -> dict[str, Any]:
    """The Explainer component: explainer/<method>/*.png and TensorBoard image summaries."""
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
    written: dict[str, int] = {}
    for method in methods:
        heatmaps = METHODS[method](model, images)
        folder = out_dir / method
        folder.mkdir(parents=True, exist_ok=True)
        overlays = np.stack([overlay(img, hm) for img, hm in zip(images, heatmaps)])
        for case, picture in zip(cases.itertuples(), overlays):
            name = f"{case.outcome}_{Path(case.path).stem}.png"
            with atomic_path(folder / name) as tmp:
                Image.fromarray(picture).save(tmp, format="PNG")
        log_images(tensorboard_dir, f"{method}/test_overlays", overlays, max_outputs=len(overlays))
        written[method] = len(overlays)
    write_json(out_dir / "cases.json", cases.drop(columns="confidence").to_dict(orient="records"))
    return {"heatmaps": written}
