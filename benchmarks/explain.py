"""Explanation latency on CPU, per image, for every method; LIME against the lime package's defaults.

Measured in one run at --image_size (224) with the default model (models.build_model("cnn"):
one grayscale channel, binary sigmoid head):

  methods  every entry of components.explain.methods.METHODS (gradcam, integrated_gradients,
           lime, shap, occlusion, and any method added later), with its default options.
           Each is called once on one warm-up image and once on two (so tf.function traces
           for a new batch size are paid before the clock starts, as in a long-running
           pipeline), then timed on one call over --n_images images: ms/image = wall clock / n.
  LIME     at the same number of perturbed samples per image (our default, read from
           components.explain.lime_heatmaps.lime_explanations), over the first --lime_images images:
             ours          components.explain.lime_heatmaps (lime_explanations, which lime_heatmaps
                           runs): grayscale SLIC superpixels, perturbed images built in one
                           vectorized step per batch, one compiled model call per 100
                           perturbations;
             lime defaults lime_image.LimeImageExplainer().explain_instance(rgb, classifier_fn,
                           num_samples=SAME) with everything else at lime's defaults
                           (quickshift superpixels, hide_color=None, top_labels=5,
                           batch_size=10), the uint8 radiograph replicated to RGB, and a
                           classifier_fn that takes one channel of lime's RGB batch and calls
                           model.predict(batch, verbose=0), as notebooks do.
           The two run alternately, image by image, so load from other processes hits both
           alike. Printed: seconds per image for both, the speed-up (goal >= 3x), and where
           the time goes: segmentation, model calls, and the rest (building the perturbed
           images, the weighted ridge regressions).

Weights: latency depends on the architecture and the input size, not on the weights (LIME
and occlusion only call the model), but a briefly fitted model gives realistic gradients
and predictions rather than a random initialization's. By default the model is fitted for
--fit_epochs (2) on --fit_images (256, seeded, balanced) training images decoded with the
Transform's own decoder (synthetic phantoms if ../shared/data is absent); --model_path
loads a trained model.keras instead. Explained images: --n_images real radiographs from
val (topped up from train images not used for fitting), seeded; phantoms without data.

    python benchmarks/explain.py [--image_size 224] [--n_images 8] [--lime_images 3]
                                 [--model_path run/trainer/model.keras] [--methods a,b]
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from lime import lime_image  # noqa: E402
from lime.wrappers.scikit_image import SegmentationAlgorithm  # noqa: E402

from components.explain import lime_heatmaps as ours_lime  # noqa: E402
from components.explain.methods import METHODS  # noqa: E402
from components.pneumonia.transform import decoded_dataset  # noqa: E402
from components.trained_model import load_keras_model  # noqa: E402
from models import build_model  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "chest_xray"
CLASSES = ("NORMAL", "PNEUMONIA")


# --------------------------------------------------------------------------- data


def list_files(folder: Path) -> tuple[list[str], list[int]]:
    paths, labels = [], []
    for label, name in enumerate(CLASSES):
        found = (
            sorted(p for p in (folder / name).glob("*") if p.is_file())
            if (folder / name).is_dir()
            else []
        )
        paths += [str(p) for p in found]
        labels += [label] * len(found)
    return paths, labels


def decode(paths: list[str], labels: list[int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size, 1) uint8 through the Transform's decoder, and labels; unreadable files dropped."""
    if not paths:
        return np.zeros((0, size, size, 1), np.uint8), np.zeros(0, np.int32)
    images, kept = [], []
    for image, label, _ in decoded_dataset(paths, np.asarray(labels, np.int32), size).batch(64):
        images.append(image.numpy())
        kept.append(label.numpy())
    return np.concatenate(images), np.concatenate(kept)


def phantoms(count: int, size: int, first_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic radiographs (uint8, half with pneumonia), or smooth blobs if the phantom
    generator is unavailable."""
    labels = np.arange(count, dtype=np.int32) % 2
    try:
        from datasets.synthetic_cxr.phantom import make_phantom

        images = [make_phantom(first_seed + i, bool(y), size)[0] for i, y in enumerate(labels)]
    except Exception:  # noqa: BLE001 - any problem with the generator: plain blobs will do
        rng = np.random.default_rng(first_seed)
        yy, xx = np.mgrid[0:size, 0:size] / size
        images = []
        for y in labels:
            image = 90 + 40 * yy + rng.normal(0, 8, (size, size))
            if y:
                cy, cx = rng.uniform(0.3, 0.7, 2)
                image += 80 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.01)
            images.append(np.clip(image, 0, 255).astype(np.uint8))
    return np.stack(images)[..., None], labels


def load_data(data: Path, size: int, n_explain: int, n_fit: int, seed: int, need_fit: bool):
    """(explain images, fit images, fit labels, description). Never raises for missing data."""
    rng = np.random.default_rng(seed)
    try:
        train_paths, train_labels = list_files(data / "train")
        val_paths, val_labels = list_files(data / "val")
        if not train_paths and not val_paths:
            raise FileNotFoundError(f"no images under {data}")
        fit_ids: list[int] = []
        if need_fit and train_paths:
            per_class = n_fit // 2
            for label in (0, 1):
                pool = [i for i, y in enumerate(train_labels) if y == label]
                fit_ids += list(rng.choice(pool, size=min(per_class, len(pool)), replace=False))
        order = rng.permutation(len(val_paths))
        chosen = [(val_paths[i], val_labels[i]) for i in order]
        source = f"{data.name}/val"
        if len(chosen) < n_explain:
            used = set(fit_ids)
            rest = [i for i in rng.permutation(len(train_paths)) if i not in used]
            chosen += [(train_paths[i], train_labels[i]) for i in rest]
            source += f" + {data.name}/train (not used for fitting)"
        chosen = chosen[: n_explain + 8]  # a few spares in case some file does not decode
        explain, _ = decode([p for p, _ in chosen], [y for _, y in chosen], size)
        explain = explain[:n_explain]
        fit_x, fit_y = decode(
            [train_paths[i] for i in fit_ids], [train_labels[i] for i in fit_ids], size
        )
        if len(explain) < n_explain or (need_fit and len(fit_x) < 2):
            raise FileNotFoundError(f"too few readable images under {data}")
        return explain, fit_x, fit_y, f"real chest X-rays from {source} (seed {seed})"
    except Exception as error:  # noqa: BLE001 - fall back to synthetic images, never crash
        explain, _ = phantoms(n_explain, size, first_seed=10_000 + seed)
        fit_x, fit_y = phantoms(n_fit if need_fit else 0, size, first_seed=seed)
        return explain, fit_x, fit_y, f"SYNTHETIC phantom radiographs ({error})"


# --------------------------------------------------------------------------- model


def get_model(args, fit_x: np.ndarray, fit_y: np.ndarray) -> tuple[keras.Model, str]:
    if args.model_path:
        model = load_keras_model(Path(args.model_path))
        return model, f"loaded {args.model_path}"
    keras.utils.set_random_seed(args.seed)
    model = build_model("cnn", args.image_size, num_classes=2, channels=1)
    if args.fit_epochs <= 0 or len(fit_x) == 0:
        return model, "cnn, random initialization (not fitted)"
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    start = time.perf_counter()
    model.fit(
        fit_x.astype("float32"),
        fit_y.astype("float32"),
        batch_size=32,
        epochs=args.fit_epochs,
        shuffle=True,
        verbose=0,
    )
    return model, (
        f"cnn fitted {args.fit_epochs} epochs on {len(fit_x)} images "
        f"({time.perf_counter() - start:.0f} s)"
    )


# --------------------------------------------------------------------------- timing


class Stopwatch:
    """Accumulates the wall time of the calls it wraps."""

    def __init__(self) -> None:
        self.seconds, self.calls = 0.0, 0

    def wrap(self, fn: Callable) -> Callable:
        def timed(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        return timed


def time_methods(model: keras.Model, images: np.ndarray, names: list[str]) -> list[tuple]:
    rows = []
    for name in names:
        method = METHODS[name]
        try:
            method(model, images[:1])
            if len(images) > 1:
                method(model, images[:2])
            start = time.perf_counter()
            maps = np.asarray(method(model, images))
            seconds = time.perf_counter() - start
            ok = maps.shape == images.shape[:3] and bool(np.isfinite(maps).all())
            rows.append(
                (
                    name,
                    1000 * seconds / len(images),
                    seconds,
                    "" if ok else f"  (output {maps.shape}, check it)",
                )
            )
        except Exception as error:  # noqa: BLE001 - report and go on with the other methods
            rows.append(
                (name, float("nan"), float("nan"), f"  FAILED: {type(error).__name__}: {error}")
            )
        print(f"  {rows[-1][0]:<22} {rows[-1][1]:9.0f} ms/image{rows[-1][3]}", flush=True)
    return rows


def lime_ours(model: keras.Model, images: np.ndarray) -> dict:
    """Our LIME at its defaults, instrumented (same computation: the default SLIC segmenter
    and the module's own classifier, each wrapped by a stopwatch)."""
    defaults = {
        k: v.default
        for k, v in inspect.signature(ours_lime.lime_explanations).parameters.items()
        if v.default is not inspect.Parameter.empty
    }
    seg, calls = Stopwatch(), Stopwatch()
    segment = seg.wrap(ours_lime.grayscale_slic(defaults["n_segments"], defaults["compactness"]))
    original = getattr(ours_lime, "_classifier", None)
    if original is not None:
        ours_lime._classifier = lambda m: calls.wrap(original(m))
    try:
        start = time.perf_counter()
        _, explanations, _ = ours_lime.lime_explanations(model, images, segmentation_fn=segment)
        total = time.perf_counter() - start
    finally:
        if original is not None:
            ours_lime._classifier = original
    return {
        "total": total,
        "segmentation": seg.seconds,
        "model": calls.seconds if original is not None else float("nan"),
        "calls": calls.calls,
        "superpixels": np.mean([e.segments.max() + 1 for e in explanations]),
    }


def lime_package_defaults(
    model: keras.Model, images: np.ndarray, num_samples: int, seed: int
) -> dict:
    """lime's own defaults as a notebook uses them, one explain_instance per image."""
    seg, calls = Stopwatch(), Stopwatch()

    def classifier_fn(batch: np.ndarray) -> np.ndarray:
        gray = batch[..., :1].astype("float32")  # lime hands back RGB; the model takes one channel
        p = model.predict(gray, verbose=0)
        return np.hstack([1.0 - p, p])

    classify = calls.wrap(classifier_fn)
    rgb = [np.repeat(image.astype(np.uint8), 3, axis=-1) for image in images]
    classifier_fn(np.stack(rgb[:1] * 10))  # a notebook has called predict before: warm it
    # lime's default segmenter, exactly as explain_instance builds it when given none.
    segment = seg.wrap(
        SegmentationAlgorithm(
            "quickshift", kernel_size=4, max_dist=200, ratio=0.2, random_seed=seed
        )
    )
    superpixels = []
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):  # lime's tqdm bar: runs, but not shown
        for image in rgb:
            explanation = lime_image.LimeImageExplainer().explain_instance(
                image, classify, num_samples=num_samples, segmentation_fn=segment, random_seed=seed
            )
            superpixels.append(explanation.segments.max() + 1)
    total = time.perf_counter() - start
    return {
        "total": total,
        "segmentation": seg.seconds,
        "model": calls.seconds,
        "calls": calls.calls,
        "superpixels": np.mean(superpixels),
    }


# --------------------------------------------------------------------------- main


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--n_images", type=int, default=8, help="images per method timing")
    parser.add_argument(
        "--lime_images",
        type=int,
        default=3,
        help="images for the LIME comparison (the same for both)",
    )
    parser.add_argument(
        "--methods", default=None, help="comma-separated subset of METHODS (default: all)"
    )
    parser.add_argument(
        "--model_path", default=None, help="a trained model.keras instead of fitting"
    )
    parser.add_argument("--fit_images", type=int, default=256)
    parser.add_argument("--fit_epochs", type=int, default=2)
    parser.add_argument("--data_dir", default=str(DATA))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    names = args.methods.split(",") if args.methods else list(METHODS)
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {unknown}; available: {', '.join(METHODS)}")
    n = max(args.n_images, 1)
    lime_n = max(1, min(args.lime_images, n))
    num_samples = inspect.signature(ours_lime.lime_explanations).parameters["num_samples"].default
    wall = time.perf_counter()

    print(
        f"machine: {platform.system()} {platform.machine()}, os.cpu_count()={os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.2f} at start; Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, lime {version('lime')}, "
        f"shap {version('shap')}, scikit-image {version('scikit-image')}"
    )
    explain, fit_x, fit_y, source = load_data(
        Path(args.data_dir),
        args.image_size,
        n,
        args.fit_images,
        args.seed,
        need_fit=not args.model_path and args.fit_epochs > 0,
    )
    model, how = get_model(args, fit_x, fit_y)
    size = model.inputs[0].shape[1]
    if size != args.image_size:
        print(
            f"note: the model takes {size} px; images are decoded at {args.image_size} px "
            f"and resized to {size}"
        )
        explain = tf.image.resize(explain.astype("float32"), (size, size)).numpy().round()
    images = explain.astype("float32")
    which = "trained model" if args.model_path else "default model"
    print(f"settings: {size} x {size} px, 1 channel, model {how}; {len(images)} images: {source}")
    print(
        f"methods: {', '.join(names)} at their default options; LIME {num_samples} samples/image "
        f"(our default) for both LIMEs, on {lime_n} image(s)"
    )

    print(
        f"\nPer-image latency, one call on {len(images)} images after warm-up "
        f"(CPU, {size} px, {which}):",
        flush=True,
    )
    rows = time_methods(model, images, names)

    ours = theirs = None
    if "lime" in METHODS:
        print(f"\nLIME, {num_samples} samples/image, {lime_n} image(s):", flush=True)
        try:  # image by image, alternating, so load from other processes hits both alike
            parts = [
                (
                    lime_ours(model, images[i : i + 1]),
                    lime_package_defaults(model, explain[i : i + 1], num_samples, args.seed),
                )
                for i in range(lime_n)
            ]
            ours, theirs = ({k: sum(p[j][k] for p in parts) for k in parts[0][j]} for j in (0, 1))
            for r in (ours, theirs):
                r["superpixels"] /= lime_n
        except Exception as error:  # noqa: BLE001
            print(f"  FAILED: {type(error).__name__}: {error}")
    if ours and theirs:
        per = lambda r, k: r[k] / lime_n  # noqa: E731
        print(f"  {'seconds per image':<38} {'ours':>8} {'lime defaults':>14}")
        print(
            f"  {'superpixels (mean)':<38} {ours['superpixels']:8.0f} {theirs['superpixels']:14.0f}"
        )
        print(
            f"  {'segmentation':<38} {per(ours, 'segmentation'):8.2f} {per(theirs, 'segmentation'):14.2f}"
        )
        label = f"model calls ({ours['calls'] // lime_n} vs {theirs['calls'] // lime_n} per image)"
        print(f"  {label:<38} {per(ours, 'model'):8.2f} {per(theirs, 'model'):14.2f}")
        rest = lambda r: (r["total"] - r["segmentation"] - r["model"]) / lime_n  # noqa: E731
        print(
            f"  {'rest (perturbed images, regression)':<38} {rest(ours):8.2f} {rest(theirs):14.2f}"
        )
        print(f"  {'total':<38} {per(ours, 'total'):8.2f} {per(theirs, 'total'):14.2f}")
        speedup = theirs["total"] / ours["total"]
        print(f"  speed-up: {speedup:.1f}x (goal >= 3x: {'met' if speedup >= 3 else 'NOT met'})")
        saved = theirs["total"] - ours["total"]
        if saved > 0:
            parts = {
                "segmentation": theirs["segmentation"] - ours["segmentation"],
                "model calls": theirs["model"] - ours["model"],
                "rest": (theirs["total"] - theirs["segmentation"] - theirs["model"])
                - (ours["total"] - ours["segmentation"] - ours["model"]),
            }
            print(
                "  of the time saved: "
                + ", ".join(f"{k} {100 * v / saved:.0f}%" for k, v in parts.items())
            )

    print(
        f"\ndocs/benchmarks.md lines ({size} px, {which}, {os.cpu_count()} CPU cores, "
        f"TensorFlow {tf.__version__}, {len(images)} images{'' if 'real' in source else ', synthetic'}):"
    )
    print("| method | ms / image |\n|---|---:|")
    for name, ms, _, note in rows:
        print(f"| {name} | {ms:.0f} |" if not note else f"| {name} | {ms:.0f} ({note.strip()}) |")
    if ours and theirs:
        print(
            f"LIME at {num_samples} samples: ours {ours['total'] / lime_n:.2f} s/image, lime's "
            f"defaults {theirs['total'] / lime_n:.2f} s/image, {theirs['total'] / ours['total']:.1f}x faster "
            f"(goal >= 3x)."
        )
    print(f"\nwall time: {time.perf_counter() - wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
