"""Saving a matplotlib figure as a PNG artifact and as a TensorBoard image summary.

TensorBoard is the shared window: every picture a component produces goes to both.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from components.artifacts import atomic_path  # noqa: E402


def figure_to_png_bytes(fig: plt.Figure, dpi: int = 100) -> bytes:
    """The figure rendered as PNG bytes (tight bounding box), as files and TensorBoard images take
    it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """A jet-coloured heatmap over the grayscale image: (h, w, 3) uint8."""
    gray = np.repeat(image[..., :1] / 255.0, 3, axis=-1)
    colour = matplotlib.colormaps["jet"](heatmap)[..., :3]
    return np.uint8(255 * np.clip((1 - alpha) * gray + alpha * colour, 0, 1))


def log_images(
    tensorboard_dir: str | os.PathLike | None,
    tag: str,
    images: np.ndarray,
    step: int = 0,
    max_outputs: int = 16,
) -> None:
    """Writes a batch of images (N, H, W, C), uint8 or float in [0, 1], as one summary."""
    if tensorboard_dir is None:
        return
    writer = tf.summary.create_file_writer(os.fspath(tensorboard_dir))
    with writer.as_default():
        tf.summary.image(tag, np.asarray(images), step=step, max_outputs=max_outputs)
    writer.close()


def save_figure(
    fig: plt.Figure,
    png_path: str | os.PathLike,
    tensorboard_dir: str | os.PathLike | None = None,
    tag: str | None = None,
    step: int = 0,
) -> Path:
    """Saves `fig` atomically as PNG and (optionally) as a TensorBoard image; closes it."""
    png = figure_to_png_bytes(fig)
    plt.close(fig)
    png_path = Path(png_path)
    with atomic_path(png_path) as tmp:
        tmp.write_bytes(png)
    if tensorboard_dir is not None:
        image = tf.io.decode_png(png, channels=4)[tf.newaxis]
        log_images(tensorboard_dir, tag or png_path.stem, image.numpy(), step=step)
    return png_path


def plot_split_counts(
    ax: plt.Axes,
    counts: pd.DataFrame,
    title: str,
    ylabel: str,
    *,
    colors: Sequence[str] | None = None,
    xlabel: str | None = "",
    bar_labels: bool = False,
) -> None:
    """Counts per split (rows) and group (columns) as grouped bars: every class-balance plot.

    `xlabel` None keeps pandas' label (the index name).
    """
    counts.plot.bar(ax=ax, rot=0, color=colors)
    if bar_labels:
        for container in ax.containers:
            ax.bar_label(container, fontsize=7)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
