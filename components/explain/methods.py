"""The registry of explanation methods: the name on the command line -> the function.

Every entry keeps the contract of this package (components/explain/__init__.py):
`method(model, images) -> maps`, images (n, h, w, 1) float pixels in [0, 255], maps
(n, h, w) in [0, 1] at the input resolution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np

from components.explain.gradcam import grad_cam, grad_cam_plus_plus
from components.explain.integrated_gradients import DEFAULT_BASELINE as DEFAULT_IG_BASELINE
from components.explain.integrated_gradients import integrated_gradients
from components.explain.lime_heatmaps import lime_heatmaps
from components.explain.occlusion import occlusion
from components.explain.shap_heatmaps import shap_heatmaps
from components.saved_splits import split_sample

Method = Callable[[keras.Model, np.ndarray], np.ndarray]

METHODS: dict[str, Method] = {
    "gradcam": grad_cam,
    "gradcam_plus_plus": grad_cam_plus_plus,
    "integrated_gradients": integrated_gradients,
    "lime": lime_heatmaps,
    "shap": shap_heatmaps,
    "occlusion": occlusion,
}
# Methods cheap enough to recompute for every randomized layer in the sanity checks.
GRADIENT_METHODS = ("gradcam", "gradcam_plus_plus", "integrated_gradients")
# What a pipeline run explains unless told otherwise (--explain).
DEFAULT_METHODS = ("gradcam", "integrated_gradients")
SHAP_BACKGROUND_IMAGES = 16


def method_options(
    methods: Sequence[str],
    transform: Path | None,
    seed: int,
    ig_baseline: str = DEFAULT_IG_BASELINE,
) -> dict[str, dict]:
    """Keyword arguments each method needs beyond (model, images): the Explainer's and
    pipelines.predict's alike, so a run and predict draw the same map for an image.

    SHAP's expected gradients integrate from reference images: a fixed, seeded sample of
    training images (the run's saved train split in `transform`), never the explained
    images themselves (an image in its own background is partly explained away against
    itself). Integrated Gradients takes its baseline (--ig_baseline; "uniform" draws its
    noise baselines with `seed`).
    """
    options: dict[str, dict] = {}
    if "integrated_gradients" in methods:
        options["integrated_gradients"] = {"baseline": ig_baseline}
        if ig_baseline == "uniform":
            options["integrated_gradients"]["seed"] = seed
    if "shap" in methods and transform is not None:
        background, _ = split_sample(transform, "train", SHAP_BACKGROUND_IMAGES, seed)
        options["shap"] = {"background": background}
    return options
