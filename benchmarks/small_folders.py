"""Small folders in the Kaggle layout for tests and benchmarks: drawn images or real ones copied."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

# Offset of the PNEUMONIA images' pixel seeds, clear of the NORMAL images' seeds.
PNEUMONIA_SEEDS = 100_000


def draw_image(path: Path, seed: int, size: tuple[int, int] = (40, 32), mode: str = "L") -> None:
    """Writes a seeded noise image of `size` (width, height) in colour `mode` at `path`, its format
    from the suffix: a stand-in file that decodes like a real one."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0]), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels)
    (image.convert(mode) if mode != "L" else image).save(path)


def make_drawn_folder(
    root: Path,
    patients_per_class: int = 12,
    images_per_patient: int = 2,
    splits: tuple[str, ...] = ("train",),
) -> Path:
    """Random-pixel images with Kaggle file names (patient ids, pathogens).

    Every split numbers its patients from 0, as the real download does (its person
    numbers restart per split): test/ holds person3 and IM-0003 as train/ does, and
    they are other patients. Every image has its own pixels (NORMAL and PNEUMONIA draw
    from separate seeds), so no two are near-duplicates.
    """
    seed = 0
    for split in splits:
        for p in range(patients_per_class):
            for i in range(images_per_patient):
                seed += 1
                draw_image(root / split / "NORMAL" / f"IM-{p:04d}-{i + 1:04d}.jpeg", seed)
                kind = "bacteria" if p % 2 else "virus"
                draw_image(
                    root / split / "PNEUMONIA" / f"person{p}_{kind}_{seed}.jpeg",
                    PNEUMONIA_SEEDS + seed,
                    mode="RGB",
                )
    return root


def copy_real_folder(shared_chest_xray: Path, root: Path, per_class: int) -> Path:
    """The first `per_class` train images of each class plus the 16 official val images."""
    for label in ("NORMAL", "PNEUMONIA"):
        target = root / "train" / label
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted((shared_chest_xray / "train" / label).iterdir())[:per_class]:
            shutil.copy(path, target / path.name)
    shutil.copytree(shared_chest_xray / "val", root / "val")
    return root
