"""Writes the tiny fake Kaggle layout beside this script (run once; the PNGs are committed).

    python datasets/chest_xray_pneumonia/dummy_data/make_dummy_data.py

Like the real files, the images mix grayscale and RGB (the builder converts to "L") and the
names follow Kaggle's patterns. They are PNG, not JPEG, so no checked-in file can be
mistaken for a copy of the real data; the builder tests write JPEGs at test time. The pixels are seeded noise over a gradient, so
every file differs and a rerun writes the same images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 32, 48
# (split, class folder, file name, PIL mode)
FILES = (
    ("train", "NORMAL", "IM-0001-0001.png", "L"),
    ("train", "NORMAL", "IM-0003-0001.png", "RGB"),
    ("train", "NORMAL", "NORMAL2-IM-0002-0001.png", "L"),
    ("train", "PNEUMONIA", "person1_bacteria_1.png", "L"),
    ("train", "PNEUMONIA", "person1_bacteria_2.png", "RGB"),
    ("train", "PNEUMONIA", "person2_virus_5.png", "RGB"),
    ("train", "PNEUMONIA", "person3_virus_6.png", "L"),
    ("test", "NORMAL", "IM-0011-0001.png", "RGB"),
    ("test", "NORMAL", "NORMAL2-IM-0012-0001.png", "L"),
    ("test", "PNEUMONIA", "person100_bacteria_478.png", "L"),
    ("test", "PNEUMONIA", "person101_virus_187.png", "RGB"),
)


def fake_radiograph(seed: int) -> np.ndarray:
    """A (HEIGHT, WIDTH) uint8 image: a vertical gradient plus seeded noise."""
    rng = np.random.default_rng(seed)
    gradient = np.linspace(40.0, 200.0, HEIGHT)[:, None] * np.ones((1, WIDTH))
    return np.clip(gradient + rng.normal(0.0, 25.0, (HEIGHT, WIDTH)), 0, 255).astype(np.uint8)


def main() -> None:
    """Writes every file of `FILES` (split/label/name, colour mode) as a seeded fake radiograph
    under this script's folder."""
    root = Path(__file__).resolve().parent
    for seed, (split, label, name, mode) in enumerate(FILES):
        path = root / split / label / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(fake_radiograph(seed)).convert(mode).save(path)
    print(f"wrote {len(FILES)} images under {root}")


if __name__ == "__main__":
    main()
