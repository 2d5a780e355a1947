"""Tests for the phantom generator."""

from __future__ import annotations

import numpy as np
import pytest

from datasets.synthetic_cxr.phantom import lung_fields, make_phantom

SEEDS = range(12)


@pytest.mark.parametrize("pneumonia", [False, True])
def test_same_seed_gives_identical_bytes(pneumonia: bool) -> None:
    first, second = make_phantom(7, pneumonia), make_phantom(7, pneumonia)
    assert first[0].tobytes() == second[0].tobytes()
    assert first[1].tobytes() == second[1].tobytes()


def test_different_seeds_differ() -> None:
    assert not np.array_equal(make_phantom(1, False)[0], make_phantom(2, False)[0])
    assert not np.array_equal(make_phantom(1, True)[1], make_phantom(2, True)[1])


@pytest.mark.parametrize("size", [64, 128])
def test_shapes_dtypes_and_ranges(size: int) -> None:
    image, mask = make_phantom(3, True, size=size)
    assert image.shape == mask.shape == (size, size)
    assert image.dtype == mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 1}
    # Dark background and bright bone both present: the full range is used, not saturated.
    assert image.min() < 40 and image.max() > 160
    assert np.mean(image == 255) < 0.01


@pytest.mark.parametrize("seed", SEEDS)
def test_mask_is_non_empty_exactly_for_pneumonia(seed: int) -> None:
    assert make_phantom(seed, False)[1].sum() == 0
    assert make_phantom(seed, True)[1].sum() > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_mask_lies_inside_the_lung_fields(seed: int) -> None:
    mask, lungs = make_phantom(seed, True)[1], lung_fields(seed)
    assert lungs.sum() > 0.1 * lungs.size
    assert not np.any(mask & (1 - lungs))


@pytest.mark.parametrize("seed", SEEDS)
def test_opacities_brighten_the_masked_lung(seed: int) -> None:
    """Same seed, same anatomy and exposure: the only difference is the lesion."""
    normal = make_phantom(seed, False)[0].astype(int)
    sick, mask = make_phantom(seed, True)
    difference = sick.astype(int) - normal
    assert difference[mask == 1].mean() > 10
    assert np.abs(difference[lung_fields(seed) == 0]).mean() < 2


@pytest.mark.parametrize("seed", SEEDS)
def test_lungs_are_darker_than_the_mediastinum(seed: int) -> None:
    image, lungs = make_phantom(seed, False)[0], lung_fields(seed).astype(bool)
    rows = np.flatnonzero(lungs.any(axis=1))
    middle = image[rows, 60:68]
    assert image[lungs].mean() + 40 < middle.mean()
