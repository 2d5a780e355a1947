"""Near-duplicate radiographs: the same image resized, re-encoded, slightly cropped or
with changed exposure, which a byte hash misses.

The signature is a 256-bit perceptual hash (pHash: the 16 x 16 lowest DCT frequencies of
a 64 x 64 grayscale thumbnail, each bit "above the median"), the bits imagehash's
`phash(image, hash_size=16)` computes. We compute it here rather than through imagehash
(or imagededup, which needs torch): they hash one PIL image at a time and compare two
hashes at a time, while ExampleGen needs every image of an NIH-sized folder hashed once
and compared in bulk. Both steps are matrix products here, so numpy's BLAS does the work:

- hashing: the DCT and a crop stretched back to 64 px are linear and separable, so two
  16 x 64 matrices per crop turn a stack of thumbnails into coefficients (R @ T @ C.T);
- comparing: with bits as +-1, Hamming distance = (256 - dot product) / 2, so a chunk of
  queries against a chunk of references is one float32 matrix product.

Chest X-rays look alike at low resolution: the usual 64-bit pHash puts thousands of
different Kaggle radiographs within 10 bits of each other, which 256 bits do not (see
docs/benchmarks.md). A global hash is not crop-invariant (a 2% crop all round moves it
about 30 bits), so each image also gets the hashes of a few crops of itself (CROPS), and
two images match when a view of either is close to the other's full view.
"""

from __future__ import annotations

import functools
from typing import Iterator

import numpy as np
from tqdm import tqdm

THUMBNAIL_SIZE = 64
HASH_SIDE = 16
BITS = HASH_SIDE * HASH_SIDE
# The views of each image hashed: (left, top, right, bottom) fractions of the side cut
# off before hashing. The full image; crops all round by 1.5, 3 and 4.5% (a view matches
# crops within about 1% of its own); 3% off one side (a label strip cut away shifts and
# stretches the rest). Measured (docs/benchmarks.md): fewer views miss most copies cut by
# 3% on one side, and a 1% grid would double the cost for little more.
CROPS = (
    (0.0, 0.0, 0.0, 0.0),
    (0.015, 0.015, 0.015, 0.015),
    (0.03, 0.03, 0.03, 0.03),
    (0.045, 0.045, 0.045, 0.045),
    (0.03, 0.0, 0.0, 0.0),
    (0.0, 0.03, 0.0, 0.0),
    (0.0, 0.0, 0.03, 0.0),
    (0.0, 0.0, 0.0, 0.03),
)
# Bits that may differ in a match. Measured on real radiographs (benchmarks/
# near_duplicates.py, docs/benchmarks.md): a re-encoded, resized, brightened or contrast-
# changed copy differs by at most 8 bits, a crop by up to 5% all round by 20; the closest
# two different radiographs of the Kaggle train split differ by 32, two follow-up images
# of one NIH patient by 28, two NIH patients by 50.
MAX_DISTANCE = 24


def dct_rows(size: int, rows: int) -> np.ndarray:
    """The first `rows` rows of the orthonormal DCT-II matrix of length `size`."""
    k = np.arange(rows)[:, None]
    n = np.arange(size)[None, :]
    matrix = np.cos(np.pi * (2 * n + 1) * k / (2 * size)) * np.sqrt(2.0 / size)
    matrix[0] /= np.sqrt(2.0)
    return matrix


def crop_matrix(size: int, start: float, end: float) -> np.ndarray:
    """Linear interpolation that cuts `start` and `end` (fractions of the side) off the two
    ends and stretches the rest back to `size` samples (rows: output, columns: input)."""
    centers = (np.arange(size) + 0.5) / size  # output pixel centres in [0, 1]
    source = (start + (1.0 - start - end) * centers) * size - 0.5
    source = np.clip(source, 0.0, size - 1.0)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, size - 1)
    weight = source - low
    matrix = np.zeros((size, size))
    matrix[np.arange(size), low] += 1.0 - weight
    matrix[np.arange(size), high] += weight
    return matrix


@functools.cache
def projections() -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns), each (crops, HASH_SIDE, THUMBNAIL_SIZE): a thumbnail's rows and
    columns -> the low DCT frequencies of one of its CROPS."""
    dct = dct_rows(THUMBNAIL_SIZE, HASH_SIDE)
    rows = [dct @ crop_matrix(THUMBNAIL_SIZE, top, bottom) for _, top, _, bottom in CROPS]
    columns = [dct @ crop_matrix(THUMBNAIL_SIZE, left, right) for left, _, right, _ in CROPS]
    return np.stack(rows).astype(np.float32), np.stack(columns).astype(np.float32)


def signatures(thumbnails: np.ndarray) -> np.ndarray:
    """(n, 64, 64) grayscale thumbnails -> (n, crops, BITS / 8) packed hash bits.

    The median threshold makes the bits ignore a global change of brightness or contrast
    (it moves the DC term and scales every coefficient alike).
    """
    pixels = np.asarray(thumbnails, np.float32)
    coefficients = np.stack([r @ pixels @ c.T for r, c in zip(*projections())], axis=1)
    flat = coefficients.reshape(len(pixels), len(CROPS), BITS)
    bits = flat > np.median(flat, axis=-1, keepdims=True)
    return np.packbits(bits, axis=-1)


def thumbnails(paths: list[str], progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(n, 64, 64) uint8 thumbnails of `paths` and a mask of those that decoded.

    Through components.images, the decoder the Transform and the model use, so every
    format (DICOM, 16-bit PNG, palettes) hashes the pixels the model would see.
    """
    from components.images import decoded_files

    stack = np.zeros((len(paths), THUMBNAIL_SIZE, THUMBNAIL_SIZE), np.uint8)
    decoded = np.zeros(len(paths), bool)
    batches = decoded_files(list(paths), THUMBNAIL_SIZE).batch(256).as_numpy_iterator()
    with tqdm(
        total=len(paths),
        desc="decoding for near-duplicates",
        unit="image",
        disable=not progress,
        leave=False,
    ) as bar:
        for images, positions in batches:
            stack[positions] = images[..., 0]
            decoded[positions] = True
            bar.update(len(positions))
    return stack, decoded


def _as_signs(packed: np.ndarray) -> np.ndarray:
    """Packed bits -> +-1 float32, the form in which a dot product counts agreements."""
    return np.unpackbits(packed, axis=-1).astype(np.float32) * 2.0 - 1.0


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def distances(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """(q, r) Hamming distances between packed signatures, each pair's smallest over
    "one image's full view against the other's crops" in both directions."""
    query, reference = _as_signs(queries), _as_signs(references)
    full_query, full_reference = query[:, 0], reference[:, 0].T
    agreement = full_query @ full_reference
    for view in range(1, len(CROPS)):
        # A crop of the reference against the query's full view, and the other way round.
        np.maximum(agreement, full_query @ reference[:, view].T, out=agreement)
        np.maximum(agreement, query[:, view] @ full_reference, out=agreement)
    return np.rint((BITS - agreement) / 2.0).astype(np.int16)


def close_pairs(
    queries: np.ndarray,
    references: np.ndarray,
    max_distance: int = MAX_DISTANCE,
    chunk: int = 512,
    progress: bool = False,
) -> np.ndarray:
    """Every (query index, reference index, distance) within `max_distance` bits.

    Chunked so memory stays near chunk x 8 chunk x crops floats whatever the folder's size:
    an NIH-sized split (tens of thousands against ~90,000) costs time, not memory.
    """
    found: list[np.ndarray] = []
    with tqdm(
        total=len(queries),
        desc="comparing for near-duplicates",
        unit="image",
        disable=not progress,
        leave=False,
    ) as bar:
        for rows in _chunks(len(queries), chunk):
            for columns in _chunks(len(references), 8 * chunk):
                block = distances(queries[rows], references[columns])
                hit_rows, hit_columns = np.nonzero(block <= max_distance)
                found.append(
                    np.stack(
                        [
                            hit_rows + rows.start,
                            hit_columns + columns.start,
                            block[hit_rows, hit_columns],
                        ],
                        axis=1,
                    )
                )
            bar.update(rows.stop - rows.start)
    return np.concatenate(found) if found else np.zeros((0, 3), int)
