"""Image embeddings for TensorBoard's Projector: features, a sprite of thumbnails, metadata.

The Projector reads `projector_config.pbtxt` in a TensorBoard run folder; the features go
beside it as a TSV (the plugin reads `tensor_path` files directly, no checkpoint needed),
with one metadata row and one sprite cell per image, in the same order.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from google.protobuf import text_format
from PIL import Image
from tensorboard.plugins import projector

from components.artifacts import atomic_path, write_text

MAX_SPRITE_SIDE = 8192  # the Projector's limit for a sprite image, in pixels


def feature_model(model: keras.Model) -> keras.Model:
    """The model up to what its output layer reads: the pooled features of the CNN and of
    the transfer backbones (dropout is inactive at inference)."""
    return keras.Model(model.inputs, model.layers[-1].input)


def sprite(images: np.ndarray, thumbnail: int) -> np.ndarray:
    """Images (n, h, w, 1) uint8 as one square grid of thumbnails, row by row."""
    side = math.ceil(math.sqrt(len(images)))
    grid = np.zeros((side * thumbnail, side * thumbnail), dtype=np.uint8)
    for k, image in enumerate(images):
        small = Image.fromarray(image[..., 0]).resize((thumbnail, thumbnail), Image.BILINEAR)
        row, col = divmod(k, side)
        grid[row * thumbnail : (row + 1) * thumbnail, col * thumbnail : (col + 1) * thumbnail] = (
            np.asarray(small)
        )
    return grid


def write_projector(
    log_dir: Path,
    name: str,
    features: np.ndarray,
    images: np.ndarray,
    metadata: pd.DataFrame,
    thumbnail: int = 64,
) -> Path:
    """`features` (n, d), `images` (n, h, w, 1) and `metadata` (n rows) as one Projector
    embedding called `name` in `log_dir`; returns the config's path."""
    if not len(features) == len(images) == len(metadata):
        raise ValueError("features, images and metadata must have one row per image")
    features = features.reshape(len(features), -1)
    thumbnail = min(thumbnail, MAX_SPRITE_SIDE // max(1, math.ceil(math.sqrt(len(images)))))
    write_text(
        log_dir / f"{name}_features.tsv",
        "\n".join("\t".join(f"{v:.6g}" for v in row) for row in features) + "\n",
    )
    cells = metadata.astype(str).replace({r"[\t\n]": " "}, regex=True)
    write_text(log_dir / f"{name}_metadata.tsv", cells.to_csv(sep="\t", index=False))
    with atomic_path(log_dir / f"{name}_sprite.png") as tmp:
        Image.fromarray(sprite(images, thumbnail)).save(tmp, format="PNG")
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = name
    embedding.tensor_path = f"{name}_features.tsv"
    embedding.tensor_shape.extend(features.shape)
    embedding.metadata_path = f"{name}_metadata.tsv"
    embedding.sprite.image_path = f"{name}_sprite.png"
    embedding.sprite.single_image_dim.extend([thumbnail, thumbnail])
    path = log_dir / "projector_config.pbtxt"  # the name the Projector plugin looks for
    write_text(path, text_format.MessageToString(config))
    return path
