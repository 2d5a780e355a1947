"""Integrated Gradients, LIME, SHAP and occlusion: the heatmap contract, that each finds
what drives the score, IG completeness on a trained model, and seeded determinism."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from components.explain.integrated_gradients import (
    integrated_gradients,
    integrated_gradients_raw,
    integrated_gradients_with_completeness,
)
from components.explain.lime_heatmaps import lime_explanations, lime_heatmaps, lime_overlay
from components.explain.occlusion import occlusion, occlusion_raw
from components.explain.shap_heatmaps import shap_heatmaps, shap_values
from models.cnn import build_cnn

# As the Explainer calls them: METHODS[name](model, images), defaults throughout.
METHODS = {
    "integrated_gradients": integrated_gradients,
    "lime": lime_heatmaps,
    "shap": shap_heatmaps,
    "occlusion": occlusion,
}
# Small-image settings for the blob test (32 x 32: fewer superpixels, smaller patches).
SMALL = {
    "integrated_gradients": {},
    "lime": {"n_segments": 25, "num_samples": 150},
    "shap": {"nsamples": 32},
    "occlusion": {"size": 6, "stride": 3},
}
from tests.support.blob_models import blob_model  # noqa: E402

SIZE = 32
BLOB = 6


def blob_images(n: int, seed: int, with_blob=True) -> tuple[np.ndarray, np.ndarray]:
    """Dim noise (raw pixels 0-10) with a bright 6 x 6 blob (200) at random places; the
    blob masks (n, h, w) bool."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 10, (n, SIZE, SIZE, 1)).astype("float32")
    masks = np.zeros((n, SIZE, SIZE), bool)
    if with_blob:
        for image, mask in zip(images, masks):
            r, c = rng.integers(2, SIZE - BLOB - 2, size=2)
            image[r : r + BLOB, c : c + BLOB] = 200.0
            mask[r : r + BLOB, c : c + BLOB] = True
    return images, masks


@pytest.fixture(scope="module")
def tiny_cnns() -> dict[str, keras.Model]:
    keras.utils.set_random_seed(0)
    return {
        "sigmoid": build_cnn(SIZE, filters=(4, 8)),
        "softmax": build_cnn(SIZE, filters=(4, 8), num_classes=3),
    }


@pytest.fixture(scope="module")
def trained_cnn() -> keras.Model:
    """A tiny CNN (raw pixels in, like models/cnn.py) trained, seeded, on blob vs no blob.

    No batch norm: a few epochs leave its moving statistics far from the batch ones, and
    the inference-mode model would not have learned anything yet.
    """
    keras.utils.set_random_seed(0)
    positives, _ = blob_images(192, seed=1)
    negatives, _ = blob_images(192, seed=2, with_blob=False)
    noise = np.random.default_rng(3).uniform(0, 40, (384, SIZE, SIZE, 1)).astype("float32")
    x = np.concatenate([positives, negatives]) + noise
    y = np.concatenate([np.ones(192), np.zeros(192)]).astype("float32")
    layers = keras.layers
    inputs = keras.Input((SIZE, SIZE, 1))
    h = layers.Rescaling(1.0 / 255.0)(inputs)
    h = layers.Conv2D(8, 3, padding="same", activation="relu")(h)
    h = layers.MaxPooling2D()(h)
    h = layers.Conv2D(16, 3, padding="same", activation="relu")(h)
    h = layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, layers.Dense(1, activation="sigmoid")(h))
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    model.fit(x, y, batch_size=32, epochs=8, shuffle=True, verbose=0)
    return model


@pytest.mark.parametrize("head", ["sigmoid", "softmax"])
@pytest.mark.parametrize("name", sorted(METHODS))
def test_heatmap_contract(name, head, tiny_cnns):
    images = np.random.default_rng(0).uniform(0, 255, (3, SIZE, SIZE, 1)).astype("float32")
    heatmaps = METHODS[name](tiny_cnns[head], images)
    assert heatmaps.shape == (3, SIZE, SIZE)
    assert np.isfinite(heatmaps).all()
    assert heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0


@pytest.mark.parametrize("name", sorted(METHODS))
def test_heatmap_mass_is_on_the_blob(name):
    images, masks = blob_images(4, seed=10)
    heatmaps = METHODS[name](blob_model(SIZE), images, **SMALL[name])
    for heatmap, mask in zip(heatmaps, masks):
        inside = heatmap[mask].mean()
        outside = heatmap[~mask].mean()
        assert inside > 2 * outside, (name, inside, outside)


def test_softmax_class_index_is_respected(tiny_cnns):
    images = np.random.default_rng(1).uniform(0, 255, (2, SIZE, SIZE, 1)).astype("float32")
    model = tiny_cnns["softmax"]
    a = integrated_gradients_raw(model, images, class_index=0, steps=8)
    b = integrated_gradients_raw(model, images, class_index=2, steps=8)
    assert not np.allclose(a, b)
    _, explanations, labels = lime_explanations(model, images, class_index=2, num_samples=40)
    assert list(labels) == [2, 2] and all(2 in e.local_exp for e in explanations)


def test_integrated_gradients_completeness_on_a_trained_model(trained_cnn):
    images, _ = blob_images(6, seed=20)
    images += np.random.default_rng(21).uniform(0, 40, images.shape).astype("float32")
    probabilities = trained_cnn.predict(images, verbose=0)[:, 0]
    black = trained_cnn.predict(np.zeros_like(images[:1]), verbose=0)[0, 0]
    assert (probabilities - black).min() > 0.2, "the model should have learned the blob"
    attributions, gap = integrated_gradients_with_completeness(trained_cnn, images)
    assert attributions.shape == images.shape and gap.shape == (6,)
    assert gap.max() < 0.05, gap
    # Chunking the path steps changes nothing; a blurred baseline is accepted too.
    chunked, _ = integrated_gradients_with_completeness(trained_cnn, images[:2], max_batch=7)
    np.testing.assert_allclose(chunked, attributions[:2], rtol=1e-4, atol=1e-7)
    _, blurred_gap = integrated_gradients_with_completeness(
        trained_cnn, images[:2], baseline="blurred", steps=128
    )
    assert np.isfinite(blurred_gap).all()


def test_lime_is_seeded_and_independent_of_the_batch(tiny_cnns):
    images = np.random.default_rng(2).uniform(0, 255, (3, SIZE, SIZE, 1)).astype("float32")
    model = tiny_cnns["sigmoid"]
    first = lime_heatmaps(model, images, num_samples=80, seed=7)
    np.testing.assert_array_equal(first, lime_heatmaps(model, images, num_samples=80, seed=7))
    np.testing.assert_array_equal(
        first[1:], lime_heatmaps(model, images[1:], num_samples=80, seed=7)
    )
    assert not np.array_equal(first, lime_heatmaps(model, images, num_samples=80, seed=8))


def test_shap_is_seeded_and_leaves_numpy_global_rng_alone(tiny_cnns):
    images = np.random.default_rng(3).uniform(0, 255, (3, SIZE, SIZE, 1)).astype("float32")
    background = np.random.default_rng(4).uniform(0, 255, (4, SIZE, SIZE, 1)).astype("float32")
    model = tiny_cnns["sigmoid"]
    np.random.seed(123)
    first = shap_values(model, images, background, nsamples=16, seed=5)
    assert np.random.randint(1 << 30) == np.random.RandomState(123).randint(1 << 30)
    assert first.shape == images.shape and np.isfinite(first).all()
    np.testing.assert_array_equal(
        first, shap_values(model, images, background, nsamples=16, seed=5)
    )
    np.testing.assert_array_equal(
        first[1:], shap_values(model, images[1:], background, nsamples=16, seed=5)
    )
    assert not np.array_equal(first, shap_values(model, images, background, nsamples=16, seed=6))


def test_occlusion_chunking_and_signed_map(tiny_cnns):
    images = np.random.default_rng(5).uniform(0, 255, (2, SIZE, SIZE, 1)).astype("float32")
    model = tiny_cnns["sigmoid"]
    whole = occlusion_raw(model, images, size=8, stride=4, fill="zero")
    chunked = occlusion_raw(model, images, size=8, stride=4, fill="zero", max_batch=5)
    np.testing.assert_allclose(whole, chunked, rtol=1e-5, atol=1e-7)
    # One patch position covering the whole image: every pixel gets the same drop.
    p = model.predict(images, verbose=0)[:, 0]
    p0 = model.predict(np.zeros_like(images), verbose=0)[:, 0]
    full = occlusion_raw(model, images, size=SIZE, fill="zero")
    np.testing.assert_allclose(
        full, np.broadcast_to((p - p0)[:, None, None], full.shape), rtol=1e-4, atol=1e-6
    )


def test_lime_overlay_colours_the_blob_green():
    images, masks = blob_images(1, seed=30)
    _, explanations, labels = lime_explanations(blob_model(SIZE), images, **SMALL["lime"])
    picture = lime_overlay(images[0], explanations[0], label=int(labels[0]))
    assert picture.shape == (SIZE, SIZE, 3) and picture.dtype == np.uint8
    blob = picture[masks[0]].astype(int)
    assert (blob[:, 1] > blob[:, 0]).mean() > 0.5  # green dominates on the blob
