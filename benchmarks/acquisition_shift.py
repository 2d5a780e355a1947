"""How a trained pneumonia model holds up when the pictures change the way scanners differ.

The official test split comes from other acquisitions than the training images, and it is
withheld here; this probe asks the next best question of a finished run: on its own test
split, at its own threshold (chosen on validation), what happens to AUC, accuracy,
sensitivity and specificity when every test image is changed in one way at a time:
gamma, brightness, contrast, blur (downscaled to half and back), sharpening, and additive
pixel noise. AUC says whether the ranking survives; sensitivity and specificity at the
fixed threshold say whether the scores drift across it, which is what costs accuracy on
a shifted test set.

    python benchmarks/acquisition_shift.py --run_dir runs/<a finished pneumonia run>
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

from components.saved_splits import split_images, split_labels  # noqa: E402
from components.trained_model import load_trained_model  # noqa: E402


def image_means(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=(1, 2, 3), keepdims=True)


def half_resolution(x: np.ndarray) -> np.ndarray:
    size = x.shape[1:3]
    small = tf.image.resize(x, (size[0] // 2, size[1] // 2), antialias=True)
    return tf.image.resize(small, size).numpy()


def sharpened(x: np.ndarray) -> np.ndarray:
    return 2.0 * x - tf.nn.avg_pool2d(x, 3, 1, "SAME").numpy()


def noisy(sd: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: x + np.random.default_rng(0).normal(0.0, sd, x.shape)


CHANGES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda x: x,
    "gamma 0.7": lambda x: 255.0 * (x / 255.0) ** 0.7,
    "gamma 1.4": lambda x: 255.0 * (x / 255.0) ** 1.4,
    "brightness -25": lambda x: x - 25.0,
    "brightness +25": lambda x: x + 25.0,
    "contrast x0.7": lambda x: (x - image_means(x)) * 0.7 + image_means(x),
    "contrast x1.3": lambda x: (x - image_means(x)) * 1.3 + image_means(x),
    "blur (half resolution)": half_resolution,
    "sharpened": sharpened,
    "noise sd 4": noisy(4.0),
    "noise sd 8": noisy(8.0),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", required=True, type=Path, help="a finished pneumonia run")
    args = parser.parse_args()
    metrics_path = args.run_dir / "evaluator" / "metrics.json"
    if not metrics_path.is_file():
        print(f"error: {metrics_path} not found: give a finished binary pneumonia run")
        return 2
    threshold = json.loads(metrics_path.read_text())["threshold"]
    if threshold is None:
        print("error: a binary run is needed (this one has no threshold)")
        return 2
    model = load_trained_model(args.run_dir / "trainer")
    images = split_images(args.run_dir / "transform", "test").astype("float32")
    labels = split_labels(args.run_dir / "transform", "test")
    print(f"{args.run_dir}: {len(labels)} test images, threshold {threshold:.3f} (chosen on val)")
    print(f"{'change':24s} {'AUC':>6s} {'accuracy':>9s} {'sensitivity':>12s} {'specificity':>12s}")
    for name, change in CHANGES.items():
        scores = model.predict(np.clip(change(images), 0.0, 255.0), batch_size=128, verbose=0)[:, 0]
        flagged = scores >= threshold
        print(
            f"{name:24s} {skm.roc_auc_score(labels, scores):6.3f} "
            f"{np.mean(flagged == labels):9.3f} {flagged[labels == 1].mean():12.3f} "
            f"{1.0 - flagged[labels == 0].mean():12.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
