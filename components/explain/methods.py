"""The registry of explanation methods: the name on the command line -> the function.

Every entry keeps the contract of this package (components/explain/__init__.py):
`method(model, images) -> maps`, images (n, h, w, 1) float pixels in [0, 255], maps
(n, h, w) in [0, 1] at the input resolution.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np

from components.explain.gradcam import grad_cam, grad_cam_plus_plus
from components.explain.integrated_gradients import integrated_gradients
from components.explain.lime_heatmaps import lime_heatmaps
from components.explain.occlusion import occlusion
from components.explain.shap_heatmaps import shap_heatmaps

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
