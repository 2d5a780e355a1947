"""The intermediate-activation view: each conv block's feature maps for one image.

Where Grad-CAM shows where the score comes from, this shows what each stage of the
network computes: the most active channels of every conv block, shallow to deep, so a
reader can see edges turn into lung-field and opacity detectors, and spot dead blocks
(mostly-zero ReLU outputs). Nested keras.applications backbones (our transfer models) are
looked into, as components.explain.gradcam does for Grad-CAM.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator

import keras
import numpy as np
import tensorflow as tf

from components.explain.gradcam import model_input
from components.reporting.figures import save_figure

TAG = "activations/feature_maps"
# Layers that only pad, crop or pool a map: not a block's computed output.
PASS_THROUGH = ("Padding", "Cropping", "Pooling")
# Area ratio that counts as downsampling: a stride-2 step quarters the area, while a
# "valid" conv only trims a border (Xception's 35 -> 33 px) and starts no new block.
DOWNSAMPLING = 2.0


def _walk(model: keras.Model) -> Iterator[tuple[keras.Model | None, keras.layers.Layer]]:
    """Layers in graph order, a nested model's layers in its place, each with the nested
    model that owns it (None for the outer model's own layers). One level deep, like
    gradcam.feature_and_prediction_model: keras.applications do not nest further."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            for inner in layer.layers:
                yield layer, inner
        else:
            yield None, layer


def _is_feature_map(layer: keras.layers.Layer) -> bool:
    return (
        not isinstance(layer, (keras.layers.InputLayer, keras.Model))
        and not any(word in type(layer).__name__ for word in PASS_THROUGH)
        and len(layer.output.shape) == 4
    )


def _spatial_size(layer: keras.layers.Layer) -> int:
    height, width = layer.output.shape[1:3]
    return height * width


def conv_block_outputs(model: keras.Model) -> list[keras.layers.Layer]:
    """The layer that ends each conv block: the last 4-D layer at each resolution.

    From the first convolution on (preprocessing at input size is no block), a 4-D layer
    ends a block when every later 4-D layer is smaller by more than DOWNSAMPLING in area:
    the map just before the network downsamples for good, plus the final map. "For good"
    passes over side branches (Xception's strided residual convs, EfficientNet's 1x1
    squeeze-excitation maps); padding, cropping and pooling layers are passed over as in
    gradcam.last_conv_layer, so for models.cnn a block ends at its ReLU, before pooling.
    Nested backbones are looked into: their blocks are layers of the nested model.
    """
    layers = [layer for _, layer in _walk(model)]
    first_conv = next((i for i, layer in enumerate(layers) if "Conv" in type(layer).__name__), None)
    if first_conv is None:
        raise ValueError(f"model {model.name} has no convolution layer")
    maps = [layer for layer in layers[first_conv:] if _is_feature_map(layer)]
    blocks, largest_after = [], 0.0
    for layer in reversed(maps):  # the running maximum from the end
        if _spatial_size(layer) > DOWNSAMPLING * largest_after:
            blocks.append(layer)
        largest_after = max(largest_after, _spatial_size(layer))
    return blocks[::-1]


def _block_extractor(
    model: keras.Model, blocks: list[keras.layers.Layer]
) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
    """A callable image batch -> {block name: its output}, one forward pass.

    A nested backbone's inner layers are not connected to the outer graph, so, as in
    gradcam.feature_and_prediction_model, the model is split into the layers before the
    backbone, the backbone (exposing its inner blocks) and the layers after it.
    Dict outputs: a functional model with a one-element output list returns a bare tensor.
    """
    owner = {id(layer): nested for nested, layer in _walk(model)}
    backbones = {id(owner[id(b)]): owner[id(b)] for b in blocks if owner[id(b)] is not None}
    if not backbones:
        outer = keras.Model(model_input(model), {b.name: b.output for b in blocks})
        return lambda images: outer(images, training=False)
    if len(backbones) > 1:
        raise ValueError(
            f"model {model.name} has blocks in {len(backbones)} nested models; "
            "one nested backbone is supported"
        )
    (backbone,) = backbones.values()
    node = backbone._inbound_nodes[0]
    position = {id(layer): i for i, layer in enumerate(model.layers)}
    here = position[id(backbone)]
    outer_before = [b for b in blocks if owner[id(b)] is None and position[id(b)] < here]
    outer_after = [b for b in blocks if owner[id(b)] is None and position[id(b)] > here]
    before = keras.Model(
        model_input(model),
        {"backbone_input": node.input_tensors[0], **{b.name: b.output for b in outer_before}},
    )
    inside = keras.Model(
        model_input(backbone),
        {
            "backbone_output": backbone.outputs[0],
            **{b.name: b.output for b in blocks if owner[id(b)] is backbone},
        },
    )
    after = (
        keras.Model(node.output_tensors[0], {b.name: b.output for b in outer_after})
        if outer_after
        else None
    )

    def forward(images: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = before(images, training=False)
        outputs.update(inside(outputs.pop("backbone_input"), training=False))
        features = outputs.pop("backbone_output")
        if after is not None:
            outputs.update(after(features, training=False))
        return outputs

    return forward


def feature_maps(model: keras.Model, image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(block layer name, its (h, w, channels) activations) for ONE image, (h, w, c) or a
    batch of one, shallow to deep, from a single forward pass."""
    batch = np.asarray(image, dtype="float32")
    batch = batch[np.newaxis] if batch.ndim == 3 else batch
    if batch.ndim != 4 or batch.shape[0] != 1:
        raise ValueError(f"feature_maps takes one image (h, w, c); got shape {np.shape(image)}")
    blocks = conv_block_outputs(model)
    outputs = _block_extractor(model, blocks)(tf.constant(batch))
    return [(block.name, np.asarray(outputs[block.name])[0]) for block in blocks]


def _min_max(values: np.ndarray) -> np.ndarray:
    """Scaled to [0, 1]; a constant map (a dead channel) becomes all zeros."""
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values, dtype="float64")


def plot_feature_maps(
    image: np.ndarray, maps: list[tuple[str, np.ndarray]], title: str, max_channels: int = 16
):
    """One row per block: the image, then its `max_channels` most active channels (highest
    mean activation, most active first), each min-max scaled on its own so weak channels
    stay visible; the row label gives the block's layer name and map size."""
    import matplotlib.pyplot as plt

    columns = 1 + min(max_channels, max(m.shape[-1] for _, m in maps))
    fig, axes = plt.subplots(
        len(maps), columns, figsize=(1.3 * columns, 1.45 * len(maps)), squeeze=False
    )
    picture = np.asarray(image, dtype="float64")
    picture = _min_max(picture[..., 0] if picture.shape[-1] == 1 else picture)
    for row, (name, activations) in zip(axes, maps):
        row[0].imshow(picture, cmap="gray", vmin=0, vmax=1)
        height, width, channels = activations.shape
        row[0].set_ylabel(f"{name}\n{height}x{width}x{channels}", fontsize=7)
        strongest = np.argsort(-activations.mean(axis=(0, 1)), kind="stable")[:max_channels]
        for ax, channel in zip(row[1:], strongest):
            ax.imshow(_min_max(activations[..., channel]), cmap="viridis", vmin=0, vmax=1)
            ax.set_title(f"ch {channel}", fontsize=6)
        for ax in row:  # ticks off, but keep the first column's row label
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in row[1 + len(strongest) :]:
            ax.axis("off")
    fig.suptitle(title or "feature maps per conv block", fontsize=9)
    fig.tight_layout()
    return fig


def activation_view(
    model: keras.Model,
    image: np.ndarray,
    png_path: str | os.PathLike,
    tensorboard_dir: str | os.PathLike | None = None,
    title: str = "",
) -> dict[str, Any]:
    """Feature maps of each conv block for one image, saved as a PNG (and a TensorBoard
    image under "activations/feature_maps"); returns a JSON-able per-block summary."""
    maps = feature_maps(model, image)
    path = save_figure(plot_feature_maps(image, maps, title), png_path, tensorboard_dir, tag=TAG)
    return {
        "png": str(Path(path)),
        "blocks": [
            {
                "layer": name,
                "shape": [int(size) for size in activations.shape],
                "mean_activation": float(activations.mean()),
                # exact zeros: a ReLU unit that is off for this image
                "dead_fraction": float(np.mean(activations == 0)),
            }
            for name, activations in maps
        ],
    }
