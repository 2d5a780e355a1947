"""The generalization levers: acquisition augmentation, per-image standardization, precision."""

from __future__ import annotations

import keras
import numpy as np

from components.augmentation import RandomGamma, RandomPixelNoise, acquisition_layers
from models import build_model


def radiograph_batch(n: int = 4, size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(20, 230, (n, size, size, 1)).astype("float32")


def test_acquisition_layers_change_training_images_and_leave_evaluation_images_alone():
    images = radiograph_batch()
    augment = keras.Sequential(acquisition_layers(1.0, seed=0))
    changed = np.asarray(augment(images, training=True))
    assert changed.shape == images.shape
    assert np.abs(changed - images).mean() > 1.0
    np.testing.assert_array_equal(np.asarray(augment(images, training=False)), images)
    assert acquisition_layers(0.0, seed=0) == []


def test_random_gamma_draws_one_curve_per_image_within_its_range():
    images = np.tile(np.linspace(1, 254, 16, dtype="float32"), (8, 16, 1))[..., None]
    out = np.asarray(RandomGamma(0.4, seed=1)(images, training=True))
    gamma = np.log(out[:, 0, 1, 0] / 255.0) / np.log(images[:, 0, 1, 0] / 255.0)
    assert np.all((gamma > 1 / 1.4 - 1e-3) & (gamma < 1.4 + 1e-3))
    assert gamma.std() > 0.01  # each image its own gamma
    # a gamma curve keeps the order of grey levels
    assert np.all(np.diff(out[0, 0, :, 0]) > 0)


def test_pixel_noise_sd_stays_below_its_maximum():
    flat = np.full((16, 32, 32, 1), 128.0, dtype="float32")
    out = np.asarray(RandomPixelNoise(4.0, seed=2)(flat, training=True))
    sds = (out - 128.0).std(axis=(1, 2, 3))
    assert sds.max() < 4.4 and sds.min() >= 0.0 and sds.std() > 0.1


def test_standardized_model_takes_raw_pixels_and_ignores_exposure(tmp_path):
    model = build_model("cnn", 32, normalization="standardize", filters=(4, 8))
    images = radiograph_batch()
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6
    )
    # a brighter, higher-contrast exposure of the same image standardizes to the same input
    exposed = 1.2 * images + 10.0
    np.testing.assert_allclose(
        loaded.predict(exposed, verbose=0), loaded.predict(images, verbose=0), atol=1e-4
    )
