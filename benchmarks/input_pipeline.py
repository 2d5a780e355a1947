"""Input-pipeline throughput on ../shared/data/chest_xray/train, side by side in one run.

Images per second of one pass (decode, resize to --image_size, augment, batch of 32) for:
  ours        the Transform: decode and resize once into a tf.data snapshot, then each epoch
              reads the cache and augments whole batches (input_fn); reported for the first
              pass (decode + save + augmented epoch) and for a later epoch
  (a) legacy  Keras' ImageDataGenerator.flow_from_directory with the same augmentation
              (what most published pneumonia notebooks use)
  (b) keras   keras.utils.image_dataset_from_directory + the same augmentation layers
  (c) ceiling tf.data decode + resize alone, parallel, no augmentation
and the ratios the issue sets goals for: ours / (a) >= 3, ours / (b) >= 1, ours / (c) >= 0.7,
where "ours" is the per-epoch rate over a --epochs-epoch training (first pass included).

The machine may be shared: every contender runs once per round, rounds interleave them
(--repeats, default 3), and the ratios use each contender's median, so a burst of load
from elsewhere slows one round of all of them rather than one contender.

    python benchmarks/input_pipeline.py [--image_size 224] [--epochs 20] [--limit N] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from components.artifacts import write_json  # noqa: E402
from components.augmentation import augmentation_layers  # noqa: E402
from components.pneumonia.transform import decoded_dataset  # noqa: E402
from components.saved_splits import input_fn  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chest_xray" / "train"
BATCH = 32
AUGMENT = {
    "rotation": 0.03,
    "zoom": 0.1,
    "translation": 0.05,
    "contrast": 0.1,
    "horizontal_flip": False,
}


def files(limit: int | None) -> tuple[list[str], np.ndarray]:
    paths, labels = [], []
    for label, folder in enumerate(("NORMAL", "PNEUMONIA")):
        found = sorted((DATA / folder).glob("*.jpeg"))
        paths += [str(p) for p in found]
        labels += [label] * len(found)
    order = np.random.default_rng(0).permutation(len(paths))[:limit]
    return [paths[i] for i in order], np.asarray(labels, np.int32)[order]


def rate(batches, count: int) -> float:
    """Images per second to exhaust an iterable of batches."""
    start = time.perf_counter()
    seen = 0
    for batch in batches:
        seen += len(batch[0])
    assert seen == count, (seen, count)
    return count / (time.perf_counter() - start)


def ceiling(paths: list[str], labels: np.ndarray, size: int) -> float:
    ds = decoded_dataset(paths, labels, size).batch(BATCH).prefetch(tf.data.AUTOTUNE)
    return rate(ds, len(paths))


def ours(
    paths: list[str], labels: np.ndarray, size: int, epochs: int
) -> tuple[float, float, float]:
    """(first-pass rate, later-epoch rate, per-epoch rate over `epochs` epochs)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-transform-"))
    try:
        start = time.perf_counter()
        decoded_dataset(paths, labels, size).save(os.fspath(folder / "train"))
        write_json(
            folder / "transform.json",
            {
                "counts": {"train": len(paths)},
                "class_names": ["NORMAL", "PNEUMONIA"],
                "augmentation": AUGMENT,
                "image_size": size,
            },
        )
        ds = input_fn(folder, "train", BATCH, training=True, seed=0)
        for _ in ds:  # first augmented epoch also fills the in-memory cache
            pass
        first = len(paths) / (time.perf_counter() - start)
        later = rate(ds, len(paths))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    total = len(paths) / first + (epochs - 1) * len(paths) / later
    return first, later, epochs * len(paths) / total


def keras_directory(paths: list[str], size: int) -> float:
    # image_dataset_from_directory reads the whole folder; link the chosen files into one.
    folder = Path(tempfile.mkdtemp(prefix="bench-keras-"))
    try:
        for p in paths:
            target = folder / Path(p).parent.name / Path(p).name
            target.parent.mkdir(exist_ok=True)
            os.symlink(p, target)
        ds = tf.keras.utils.image_dataset_from_directory(
            folder,
            labels="inferred",
            label_mode="binary",
            color_mode="grayscale",
            image_size=(size, size),
            batch_size=BATCH,
            shuffle=True,
            seed=0,
            verbose=False,
        )
        layers = augmentation_layers(seed=0, **AUGMENT)
        ds = ds.map(
            lambda x, y: (layers(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE
        ).prefetch(tf.data.AUTOTUNE)
        return rate(ds, len(paths))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def legacy_generator(paths: list[str], labels: np.ndarray, size: int) -> float:
    generator = tf.keras.preprocessing.image.ImageDataGenerator(
        rescale=None,
        rotation_range=0.03 * 360,
        zoom_range=0.1,
        width_shift_range=0.05,
        height_shift_range=0.05,
        fill_mode="constant",
    )
    frame = pd.DataFrame({"filename": paths, "class": np.where(labels == 1, "PNEUMONIA", "NORMAL")})
    flow = generator.flow_from_dataframe(
        frame,
        target_size=(size, size),
        color_mode="grayscale",
        class_mode="binary",
        batch_size=BATCH,
        shuffle=True,
        seed=0,
    )
    steps = int(np.ceil(len(paths) / BATCH))
    return rate((flow[i] for i in range(steps)), len(paths))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--limit", type=int, default=None, help="use only N images")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (medians)")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: no data at {DATA}")
        return 0
    paths, labels = files(args.limit)
    n, size = len(paths), args.image_size
    print(
        f"{n} images at {size} px, batch {BATCH}, {os.cpu_count()} CPU cores, "
        f"{args.repeats} interleaved rounds"
    )
    rounds = []
    for round_number in range(1, args.repeats + 1):
        measured = (
            ceiling(paths, labels, size),
            legacy_generator(paths, labels, size),
            keras_directory(paths, size),
            *ours(paths, labels, size, args.epochs),
        )
        rounds.append(measured)
        print(
            f"round {round_number}: (c) {measured[0]:.0f}, (a) {measured[1]:.0f}, "
            f"(b) {measured[2]:.0f}, ours first pass {measured[3]:.0f}, later {measured[4]:.0f}, "
            f"over {args.epochs} epochs {measured[5]:.0f} images/s"
        )
    c, a, b, first, later, per_epoch = np.median(np.asarray(rounds), axis=0)
    print(f"medians over {args.repeats} rounds:")
    print(f"(c) decode+resize ceiling        {c:8.1f} images/s")
    print(f"(a) ImageDataGenerator           {a:8.1f} images/s")
    print(f"(b) image_dataset_from_directory {b:8.1f} images/s")
    print(
        f"ours: first pass {first:.1f}, later epochs {later:.1f}, "
        f"over {args.epochs} epochs {per_epoch:.1f} images/s"
    )
    print(
        f"ratios: ours/(a) {per_epoch / a:.2f} (goal >= 3), ours/(b) {per_epoch / b:.2f} "
        f"(goal >= 1), ours/(c) {per_epoch / c:.2f} (goal >= 0.7); "
        f"first pass alone: /(a) {first / a:.2f}, /(b) {first / b:.2f}, /(c) {first / c:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
