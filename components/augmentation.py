"""Augmentation for radiographs: one random affine warp (rotation, zoom, shift) + contrast.

Keras has RandomRotation, RandomZoom and RandomTranslation but no single affine layer;
chained, they resample every image three times (three times the cost, three rounds of
interpolation blur). RandomAffine reuses RandomRotation's own machinery and only adds a
random scale and shift to the matrix it builds, so each image is warped once.
"""

from __future__ import annotations

import keras
import numpy as np

# The input pipeline's dtype: pixel values 0-255 with sub-grey-level noise need float32.
INPUT_DTYPE = "float32"
# --acquisition_augmentation's default: the block on at its measured range.
DEFAULT_ACQUISITION = 1.0


class RandomAffine(keras.layers.RandomRotation):
    """Random rotation (fraction of a full turn), zoom (fraction) and shift (fraction)."""

    def __init__(self, rotation: float, zoom: float, translation: float, **kwargs):
        super().__init__(factor=rotation, **kwargs)
        self.zoom, self.translation = zoom, translation

    def get_random_transformation(self, data, training=True, seed=None):
        """One affine matrix per image (angle, scale, shift drawn uniformly within the factors),
        mapping output to input pixels; None outside training."""
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
    acquisition: float = 0.0,
) -> keras.Sequential:
    """Mild geometric and contrast jitter. No vertical flips; a horizontal flip is an
    option only, since a mirrored chest (heart on the right) is not a real chest.

    Every layer computes in float32 whatever the global dtype policy: augmentation is part
    of the input pipeline, not of the model, and a mixed policy set for training
    (--precision) would otherwise make it compute in bfloat16 or float16.
    """
    layers: list[keras.layers.Layer] = [
        RandomAffine(
            rotation, zoom, translation, fill_mode="constant", seed=seed, dtype=INPUT_DTYPE
        ),
        keras.layers.RandomContrast(
            contrast, value_range=(0, 255), seed=seed + 3, dtype=INPUT_DTYPE
        ),
        *acquisition_layers(acquisition, seed),
    ]
    if horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 4, dtype=INPUT_DTYPE))
    return keras.Sequential(layers, name="augmentation")


class RandomGamma(keras.layers.Layer):
    """x -> 255 (x / 255) ** g, g log-uniform in [1 / (1 + factor), 1 + factor], per image.

    Keras has brightness and contrast layers but none for gamma, the curve by which
    detector and processing settings differ most between acquisitions.
    """

    def __init__(self, factor: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.factor, self.seed = factor, seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        """Applies one random gamma per image to pixels in [0, 255]; the identity outside training
        or with factor 0."""
        if not training or self.factor <= 0:
            return images
        ops = keras.ops
        log_max = float(np.log1p(self.factor))
        shape = (ops.shape(images)[0], 1, 1, 1)
        gamma = ops.exp(keras.random.uniform(shape, -log_max, log_max, seed=self.generator))
        return 255.0 * ops.power(ops.clip(images / 255.0, 0.0, 1.0), gamma)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}


class RandomPixelNoise(keras.layers.Layer):
    """Gaussian pixel noise, its sd in grey levels drawn per image from [0, max_sd].

    keras.layers.GaussianNoise takes a fixed sd of at most 1 (meant for activations).
    """

    def __init__(self, max_sd: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.max_sd, self.seed = max_sd, seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        """Adds Gaussian noise of a random sd per image, in grey levels; the identity outside
        training or with max_sd 0."""
        if not training or self.max_sd <= 0:
            return images
        shape = keras.ops.shape(images)
        sd = keras.random.uniform((shape[0], 1, 1, 1), 0.0, self.max_sd, seed=self.generator)
        return images + sd * keras.random.normal(shape, seed=self.generator)

    def get_config(self):
        return {**super().get_config(), "max_sd": self.max_sd, "seed": self.seed}


def acquisition_layers(strength: float, seed: int) -> list[keras.layers.Layer]:
    """What changes between scanners and sites, applied together at training time.

    Gamma, brightness and contrast (exposure and processing), Gaussian blur and sharpening
    (detector resolution and post-processing), and pixel noise (dose). Each image draws
    its own amount; `strength` 1.0 is the default range, 0 turns the block off.
    """
    if strength <= 0:
        return []
    return [
        RandomGamma(0.4 * strength, seed=seed + 10, dtype=INPUT_DTYPE),
        keras.layers.RandomBrightness(
            0.1 * strength, value_range=(0, 255), seed=seed + 11, dtype=INPUT_DTYPE
        ),
        keras.layers.RandomGaussianBlur(
            factor=(0.0, 1.0),
            kernel_size=5,
            sigma=max(0.5, 1.0 * strength),
            value_range=(0, 255),
            seed=seed + 12,
            dtype=INPUT_DTYPE,
        ),
        keras.layers.RandomSharpness(
            0.3 * strength, value_range=(0, 255), seed=seed + 13, dtype=INPUT_DTYPE
        ),
        RandomPixelNoise(3.0 * strength, seed=seed + 14, dtype=INPUT_DTYPE),
    ]
