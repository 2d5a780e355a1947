"""How ExampleGen's near-duplicate check (components/near_duplicates.py) behaves on real
radiographs: what it matches inside the whole Kaggle train split, whether it matches the
development site (half the official test split) to train, what it matches inside the
NIH sample, its recall on planted re-exports of train images, and what an NIH-sized
comparison costs.

    python benchmarks/near_duplicates.py [--data ../shared/data] [--out runs/near_duplicates]
        [--planted 200] [--seed 0]

Planted copies: `--planted` train images drawn with `--seed`, each changed in one way at a
time (re-encoded, resized, brightened, contrast, gamma, cropped all round or on one side),
written as files and hashed through the same decoder as ExampleGen; a copy is found when
its original is within the threshold, wrongly matched when another train image is closer.
Writes <out>/near_duplicates.json and <out>/pairs.png: the matched pairs inside train,
and the closest pairs that do not match, side by side.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image, ImageEnhance  # noqa: E402

from benchmarks.machine import cpu_name  # noqa: E402
from components import near_duplicates as phash  # noqa: E402
from components.artifacts import write_json  # noqa: E402
from datasets.chest_xray_pneumonia.file_names import patient_id  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
# NIH ChestX-ray14: 112,120 images; with ExampleGen's default 10% val and 10% test.
NIH_IMAGES = 112_120


def crop(image: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    width, height = image.size
    return image.crop(
        (
            round(left * width),
            round(top * height),
            width - round(right * width),
            height - round(bottom * height),
        )
    )


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("L").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("L").save(buffer, format="PNG")
    return buffer.getvalue()


def gamma(image: Image.Image, value: float) -> Image.Image:
    return image.point(lambda v: round(255 * (v / 255) ** value))


# One re-export each, as the file's bytes; the first is "the planted re-encoding" the
# docs/benchmarks.md quotes.
CHANGES: dict[str, Callable[[Image.Image], bytes]] = {
    "resized to 200 px, JPEG quality 80": lambda im: jpeg(
        im.resize((200, 200), Image.Resampling.LANCZOS), 80
    ),
    "JPEG quality 50": lambda im: jpeg(im, 50),
    "upscaled to 1024 px (PNG)": lambda im: png(im.resize((1024, 1024), Image.Resampling.BICUBIC)),
    "brightness +10%": lambda im: jpeg(ImageEnhance.Brightness(im).enhance(1.1)),
    "brightness -15%": lambda im: jpeg(ImageEnhance.Brightness(im).enhance(0.85)),
    "contrast -20%": lambda im: jpeg(ImageEnhance.Contrast(im).enhance(0.8)),
    "gamma 0.8": lambda im: jpeg(gamma(im, 0.8)),
    "gamma 0.7": lambda im: jpeg(gamma(im, 0.7)),
    **{
        f"cropped {p}% all round": (lambda im, f=p / 100: jpeg(crop(im, f, f, f, f)))
        for p in (1, 2, 3, 4, 5, 6)
    },
    **{
        f"cropped {p}% on the left": (lambda im, f=p / 100: jpeg(crop(im, f, 0, 0, 0)))
        for p in (1, 2, 3, 5)
    },
    "cropped 2% top and bottom": lambda im: jpeg(crop(im, 0, 0.02, 0, 0.02)),
}


def hashed(paths: list[Path]) -> tuple[np.ndarray, float]:
    """Signatures of `paths` (all must decode) and the seconds decoding and hashing took."""
    start = time.perf_counter()
    stack, decoded = phash.thumbnails([str(p) for p in paths])
    if not decoded.all():
        raise SystemExit(f"{(~decoded).sum()} images did not decode")
    return phash.signatures(stack), time.perf_counter() - start


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pairs_within(signatures: np.ndarray, max_distance: int) -> np.ndarray:
    """(i, j, distance) with i < j for every pair of one set within `max_distance`."""
    pairs = phash.close_pairs(signatures, signatures, max_distance)
    return pairs[pairs[:, 0] < pairs[:, 1]]


def train_matches(train: list[Path], signatures: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """Pairs inside train within the threshold and the closest ones beyond it (to 48 bits)."""
    start = time.perf_counter()
    pairs = pairs_within(signatures, 48)
    seconds = time.perf_counter() - start
    table = pd.DataFrame(pairs, columns=["i", "j", "distance"])
    table["a"] = [train[i] for i in table["i"]]
    table["b"] = [train[j] for j in table["j"]]
    table["identical_bytes"] = [sha256(a) == sha256(b) for a, b in zip(table["a"], table["b"])]
    table["same_patient"] = [
        a.parent.name == b.parent.name and patient_id(a.name) == patient_id(b.name)
        for a, b in zip(table["a"], table["b"])
    ]
    matched = table[table["distance"] <= phash.MAX_DISTANCE]
    different = table[~table["identical_bytes"]]
    summary = {
        "images": len(train),
        "pairs_compared": len(train) * (len(train) - 1) // 2,
        "compare_seconds": round(seconds, 2),
        "matched_pairs": len(matched),
        "matched_identical_bytes": int(matched["identical_bytes"].sum()),
        "matched_same_patient": int(matched["same_patient"].sum()),
        "matched_not_identical": int((~matched["identical_bytes"]).sum()),
        "closest_not_identical": int(different["distance"].min()) if len(different) else None,
        "not_identical_within_48": {
            str(d): int(n) for d, n in different["distance"].value_counts().sort_index().items()
        },
    }
    return table, summary


def planted_recall(
    train: list[Path], signatures: np.ndarray, count: int, seed: int
) -> tuple[dict, np.ndarray]:
    """Per change: share of planted copies whose original is within the threshold, share
    matched to another train image first, and the median and largest distance to the
    original."""
    picks = np.random.default_rng(seed).choice(len(train), count, replace=False)
    digests = np.array([sha256(path) for path in train])
    twins = digests[:, None] == digests[None, :]  # (train, train): the same bytes
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for n, (name, change) in enumerate(CHANGES.items()):
            paths = []
            for i in picks:
                with Image.open(train[i]) as image:
                    encoded = change(image.convert("L"))
                paths.append(Path(folder) / f"{n}_{i}.image")  # the decoder sniffs the format
                paths[-1].write_bytes(encoded)
            copies, _ = hashed(paths)
            distance = phash.distances(copies, signatures)
            to_original = distance[np.arange(count), picks]
            # Another train image with the original's bytes (Kaggle repeats a few) is the
            # same picture, not a wrong match.
            others = np.where(twins[picks], 10_000, distance)
            results[name] = {
                "recall": round(float(np.mean(to_original <= phash.MAX_DISTANCE)), 3),
                "wrongly_matched": round(
                    float(np.mean(others.min(axis=1) <= phash.MAX_DISTANCE)), 3
                ),
                "median_distance": float(np.median(to_original)),
                "max_distance": int(to_original.max()),
            }
            print(f"  {name:36s} {results[name]}", flush=True)
    return results, picks


def nih_sample(data: Path) -> dict:
    """Pairs inside the 783-image NIH sample within the threshold, and how close one
    patient's follow-ups and different patients come."""
    labels = pd.read_csv(data / "nih_sample" / "labels.csv", dtype=str)
    paths = [data / "nih_sample" / p for p in labels["image_path"]]
    signatures, _ = hashed(paths)
    pairs = pairs_within(signatures, 256)
    patients = labels["patient_id"].to_numpy()
    same = patients[pairs[:, 0]] == patients[pairs[:, 1]]
    return {
        "images": len(paths),
        "matched_pairs": int((pairs[:, 2] <= phash.MAX_DISTANCE).sum()),
        "closest_same_patient": int(pairs[same, 2].min()),
        "closest_different_patients": int(pairs[~same, 2].min()),
    }


def nih_scale_seconds(queries: int = 2048) -> dict:
    """Time `queries` val/test hashes against an NIH-sized earlier split, then scale to
    NIH's 11,212 val images against 89,696 train and 11,212 test against 100,908."""
    rng = np.random.default_rng(0)
    val = test = NIH_IMAGES // 10
    references = rng.integers(0, 256, (NIH_IMAGES - test, len(phash.CROPS), 32), np.uint8)
    batch = rng.integers(0, 256, (queries, len(phash.CROPS), 32), np.uint8)
    start, cpu_start = time.perf_counter(), time.process_time()
    phash.close_pairs(batch, references)
    seconds = time.perf_counter() - start
    # CPU seconds (both cores' BLAS threads) say what the work costs on a shared machine.
    cpu_seconds = time.process_time() - cpu_start
    pairs_measured = queries * len(references)
    pairs_nih = val * (NIH_IMAGES - val - test) + test * (NIH_IMAGES - test)
    return {
        "measured_queries": queries,
        "measured_references": len(references),
        "measured_seconds": round(seconds, 1),
        "measured_cpu_seconds": round(cpu_seconds, 1),
        "pairs_per_second": round(pairs_measured / seconds),
        "nih_pairs": pairs_nih,
        "nih_seconds_estimated": round(seconds * pairs_nih / pairs_measured),
        "nih_cpu_seconds_estimated": round(cpu_seconds * pairs_nih / pairs_measured),
    }


def thumbnail(path: Path, size: int = 160) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("L").resize((size, size), Image.Resampling.LANCZOS)


def pairs_picture(table: pd.DataFrame, out: Path, rows: int = 8) -> None:
    """Matched pairs (up to half the rows) and the closest unmatched ones, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matched = table[table["distance"] <= phash.MAX_DISTANCE].head(rows // 2)
    unmatched = table[table["distance"] > phash.MAX_DISTANCE].sort_values("distance")
    shown = pd.concat([matched, unmatched.head(rows - len(matched))])
    figure, axes = plt.subplots(len(shown), 2, figsize=(5.2, 2.7 * len(shown)))
    for row, pair in zip(np.atleast_2d(axes), shown.itertuples()):
        verdict = "match" if pair.distance <= phash.MAX_DISTANCE else "no match"
        same = "identical bytes" if pair.identical_bytes else "different bytes"
        for axis, path in zip(row, (pair.a, pair.b)):
            axis.imshow(thumbnail(path), cmap="gray", vmin=0, vmax=255)
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_xlabel(path.name, fontsize=7)
        row[0].set_title(f"{verdict}: {pair.distance} bits, {same}", fontsize=8, loc="left")
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("runs/near_duplicates"))
    parser.add_argument("--planted", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    train = sorted((args.data / "chest_xray" / "train").glob("*/*.jpeg"))
    site = sorted((args.data / "chest_xray_site").glob("*/*.jpeg"))
    print(f"CPU: {cpu_name()}; threshold {phash.MAX_DISTANCE} of {phash.BITS} bits", flush=True)

    signatures, hash_seconds = hashed(train)
    table, inside_train = train_matches(train, signatures)
    inside_train["decode_and_hash_seconds"] = round(hash_seconds, 1)
    print(f"inside train: {inside_train}", flush=True)

    site_signatures, _ = hashed(site)
    to_train = phash.distances(site_signatures, signatures)
    site_report = {
        "images": len(site),
        "matched_to_train": int((to_train.min(axis=1) <= phash.MAX_DISTANCE).sum()),
        "closest_distance": int(to_train.min()),
    }
    print(f"development site against train: {site_report}", flush=True)
    nih = nih_sample(args.data) if (args.data / "nih_sample").is_dir() else None
    print(f"NIH sample: {nih}", flush=True)

    print(f"planted copies of {args.planted} train images (seed {args.seed}):", flush=True)
    planted, _ = planted_recall(train, signatures, args.planted, args.seed)
    scale = nih_scale_seconds()
    print(f"NIH-sized comparison: {scale}", flush=True)

    pairs_picture(table, args.out / "pairs.png")
    write_json(
        args.out / "near_duplicates.json",
        {
            "cpu": cpu_name(),
            "threshold_bits": phash.MAX_DISTANCE,
            "bits": phash.BITS,
            "zooms": list(phash.CROPS),
            "inside_train": inside_train,
            "site_against_train": site_report,
            "nih_sample": nih,
            "planted": planted,
            "nih_scale": scale,
            "matched_pairs_inside_train": [
                {"a": str(r.a), "b": str(r.b), "distance": int(r.distance)}
                for r in table[table["distance"] <= phash.MAX_DISTANCE].itertuples()
            ],
            "closest_unmatched_pairs_inside_train": [
                {"a": str(r.a), "b": str(r.b), "distance": int(r.distance)}
                for r in table[table["distance"] > phash.MAX_DISTANCE]
                .sort_values("distance")
                .head(10)
                .itertuples()
            ],
        },
    )
    print(f"wrote {args.out / 'near_duplicates.json'} and {args.out / 'pairs.png'}")


if __name__ == "__main__":
    main()
