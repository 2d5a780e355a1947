"""Near-duplicate radiographs: the same image resized, re-encoded, slightly cropped or
with changed exposure, which a byte hash misses.

The signature is a 256-bit perceptual hash (pHash: the 16 x 16 lowest DCT frequencies of
a 64 x 64 grayscale thumbnail, each bit "above the median"), the bits imagehash's
`phash(image, hash_size=16)` computes. We compute it here rather than through imagehash
(or imagededup, which needs torch): they hash one PIL image at a time and compare two
hashes at a time, while ExampleGen needs every image of an NIH-sized folder hashed once
and compared in bulk. Both steps are matrix products here, so numpy's BLAS does the work:

- hashing: the DCT and a centered zoom are linear and separable, so one 16 x 64 matrix
  per zoom turns a stack of thumbnails into coefficients (P @ T @ P.T);
- comparing: with bits as +-1, Hamming distance = (256 - dot product) / 2, so a chunk of
  queries against a chunk of references is one float32 matrix product.

Chest X-rays look alike at low resolution: the usual 64-bit pHash puts thousands of
different Kaggle radiographs within 10 bits of each other, which 256 bits do not (see
README "Measured": no two different train radiographs closer than 38 bits). A global
hash is not crop-invariant (a 2% crop all round moves it about 30 bits), so each image
also gets the hashes of its centered crops by 2% and 4% a side, and two images match when
either one's crop is close to the other's full view.
"""

from __future__ import annotations

import functools
from typing import Iterator

import numpy as np
from tqdm import tqdm

THUMBNAIL_SIZE = 64
HASH_SIDE = 16
BITS = HASH_SIDE * HASH_SIDE
# Centered crops per side hashed besides the full image (fractions of the side).
ZOOMS = (0.0, 0.02, 0.04)
# Bits that may differ in a match. Measured (benchmarks/near_duplicates.py, README
# "Measured"): a planted re-encoding, resizing, brightening or 4% crop differs by at most
# about 22 bits; the closest two different radiographs of the Kaggle train split by 38,
# two follow-up images of one NIH patient by 34.
MAX_DISTANCE = 24


def dct_rows(size: int, rows: int) -> np.ndarray:
    """The first `rows` rows of the orthonormal DCT-II matrix of length `size`."""
    k = np.arange(rows)[:, None]
    n = np.arange(size)[None, :]
    matrix = np.cos(np.pi * (2 * n + 1) * k / (2 * size)) * np.sqrt(2.0 / size)
    matrix[0] /= np.sqrt(2.0)
    return matrix


def zoom_matrix(size: int, fraction: float) -> np.ndarray:
    """Linear interpolation that crops `fraction` of the side off each edge and stretches
    the rest back to `size` samples (rows: output pixels, columns: input pixels)."""
    centers = (np.arange(size) + 0.5) / size  # output pixel centres in [0, 1]
    source = (fraction + (1.0 - 2.0 * fraction) * centers) * size - 0.5
    source = np.clip(source, 0.0, size - 1.0)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, size - 1)
    weight = source - low
    matrix = np.zeros((size, size))
    matrix[np.arange(size), low] += 1.0 - weight
    matrix[np.arange(size), high] += weight
    return matrix


@functools.cache
def projections() -> np.ndarray:
    """(zooms, HASH_SIDE, THUMBNAIL_SIZE): thumbnail rows -> low DCT frequencies of a crop."""
    dct = dct_rows(THUMBNAIL_SIZE, HASH_SIDE)
    return np.stack([dct @ zoom_matrix(THUMBNAIL_SIZE, f) for f in ZOOMS]).astype(np.float32)


def signatures(thumbnails: np.ndarray) -> np.ndarray:
    """(n, 64, 64) grayscale thumbnails -> (n, zooms, BITS / 8) packed hash bits.

    The median threshold makes the bits ignore a global change of brightness or contrast
    (it moves the DC term and scales every coefficient alike).
    """
    pixels = np.asarray(thumbnails, np.float32)
    coefficients = np.stack([p @ pixels @ p.T for p in projections()], axis=1)
    flat = coefficients.reshape(len(pixels), len(ZOOMS), BITS)
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
    n_query, n_reference = len(query), len(reference)
    # The query's full view against every view of the reference (one matrix product).
    every_view = reference.reshape(n_reference * len(ZOOMS), BITS)
    agreement = (query[:, 0] @ every_view.T).reshape(n_query, n_reference, len(ZOOMS))
    agreement = agreement.max(axis=-1)
    # The query's crops against the reference's full view.
    for zoom in range(1, len(ZOOMS)):
        np.maximum(agreement, query[:, zoom] @ reference[:, 0].T, out=agreement)
    return np.rint((BITS - agreement) / 2.0).astype(np.int16)


def close_pairs(
    queries: np.ndarray,
    references: np.ndarray,
    max_distance: int = MAX_DISTANCE,
    chunk: int = 512,
    progress: bool = False,
) -> np.ndarray:
    """Every (query index, reference index, distance) within `max_distance` bits.

    Chunked so memory stays near chunk x chunk x zooms floats whatever the folder's size:
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
