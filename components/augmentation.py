"""Augmentation for radiographs: one random affine warp (rotation, zoom, shift) + contrast.

Keras has RandomRotation, RandomZoom and RandomTranslation but no single affine layer;
chained, they resample every image three times (three times the cost, three rounds of
interpolation blur). RandomAffine reuses RandomRotation's own machinery and only adds a
random scale and shift to the matrix it builds, so each image is warped once.
"""

from __future__ import annotations

import keras


class RandomAffine(keras.layers.RandomRotation):
    """Random rotation (fraction of a full turn), zoom (fraction) and shift (fraction)."""

    def __init__(self, rotation: float, zoom: float, translation: float, **kwargs):
        super().__init__(factor=rotation, **kwargs)
        self.zoom, self.translation = zoom, translation

    def get_random_transformation(self, data, training=True, seed=None):
        ops = self.backend
        if not training:
            return None
        images = data["images"] if isinstance(data, dict) else data
        shape = ops.core.shape(images)
        batch_size, height, width = (
            (shape[0], shape[1], shape[2]) if len(shape) == 4 else (1, shape[0], shape[1])
        )
        if seed is None:
            seed = self._get_seed_generator(ops._backend)

        def uniform(low: float, high: float):
            return ops.random.uniform(shape=(batch_size,), minval=low, maxval=high, seed=seed)

        angle = uniform(self.factor[0] * 360.0, self.factor[1] * 360.0)
        # The matrix maps output to input pixels: scale > 1 shows more of the image.
        scale = uniform(1.0 - self.zoom, 1.0 + self.zoom)
        shift_x = uniform(-self.translation, self.translation) * ops.cast(width, "float32")
        shift_y = uniform(-self.translation, self.translation) * ops.cast(height, "float32")
        zeros = ops.numpy.zeros([batch_size])
        matrix = self._compute_affine_matrix(
            center_x=0.5,
            center_y=0.5,
            angle=angle,
            translate_x=shift_x,
            translate_y=shift_y,
            scale=scale,
            shear_x=zeros,
            shear_y=zeros,
            height=height,
            width=width,
        )
        if len(shape) == 3:
            matrix = ops.numpy.squeeze(matrix, axis=0)
        return {
            "angle": angle,
            "rotation_matrix": matrix,
            "image_height": height,
            "image_width": width,
            "batch_size": batch_size,
        }

    def get_config(self):
        config = super().get_config()
        config.update(zoom=self.zoom, translation=self.translation)
        config["rotation"] = config.pop("factor")
        return config


def augmentation_layers(
    rotation: float,
    zoom: float,
    translation: float,
    contrast: float,
    horizontal_flip: bool,
    seed: int,
) -> keras.Sequential:
    """Mild geometric and contrast jitter. No vertical flips; a horizontal flip is an
    option only, since a mirrored chest (heart on the right) is not a real chest."""
    layers: list[keras.layers.Layer] = [
        RandomAffine(rotation, zoom, translation, fill_mode="constant", seed=seed),
        keras.layers.RandomContrast(contrast, value_range=(0, 255), seed=seed + 3),
    ]
    if horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 4))
    return keras.Sequential(layers, name="augmentation")
