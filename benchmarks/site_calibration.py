"""How many labelled images a new site needs, and whether the shift report tells a site
from the training hospital, on a finished pneumonia run and the development site.

    python benchmarks/site_calibration.py --run_dir RUN [--site_dir ../shared/data/chest_xray_site]

Recalibration (what `pipelines.evaluate --calibration_dir` does, replayed many times):
for K = 8, 16, 32, 64 labelled site images (K/2 a class, seeded draws), each threshold
rule chooses the operating point on the K images; sensitivity and specificity are
measured on the rest of the site (images of a calibration patient left out, as the
pipeline does), mean and 10th percentile over the draws, beside the frozen threshold
(the run's own, chosen on its validation split) on the same rest.

Drift (components/shift.py's rule, as `pipelines.evaluate` applies it): the false-alarm
rate over random subsets of the run's held-out test patients (held out of training by
patient; not the official val images), and the detection rate over random subsets of
the site, each subset against the run's validation split.

The model scores every image once; the draws reuse the scores and features.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.machine import cpu_name  # noqa: E402

SITE = REPO.parent / "shared" / "data" / "chest_xray_site"
RULES = ("youden", "target_sensitivity")
TARGET_SENSITIVITY = 0.95


def scored_set(model, paths: list[str], images: np.ndarray, threshold: float, patients):
    """An ImageSet (components/shift.py) of images the model scores once."""
    import keras

    from components.shift import ImageSet

    both = keras.Model(model.inputs, [model.layers[-1].input, model.outputs[0]])
    features, scores = both.predict(images.astype("float32"), batch_size=64, verbose=0)
    scores = scores[:, 0]
    return ImageSet(
        paths=np.asarray(paths),
        images=images,
        scores=scores,
        flagged=scores >= threshold,
        features=features.reshape(len(features), -1),
        patients=np.asarray(patients).astype(str),
    )


def site_images(site_dir: Path, image_size: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The site's images decoded as the pipeline decodes them, with 0/1 labels."""
    from components.images import decoded_files
    from datasets.chest_xray_pneumonia.file_names import has_image_suffix

    paths = sorted(
        str(p) for label in ("NORMAL", "PNEUMONIA") for p in (site_dir / label).iterdir()
    )
    paths = [p for p in paths if has_image_suffix(p)]
    decoded = list(decoded_files(paths, image_size).as_numpy_iterator())
    kept = [paths[int(position)] for _, position in decoded]
    labels = np.array([int(Path(p).parent.name == "PNEUMONIA") for p in kept])
    return kept, np.stack([image for image, _ in decoded]), labels


def subset(images, chosen: np.ndarray):
    from components.shift import ImageSet

    return ImageSet(
        *(np.asarray(getattr(images, f))[chosen] for f in ImageSet.__dataclass_fields__)
    )


def stratified_draw(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """K/2 images of each class, seeded."""
    return np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), size=k // 2, replace=False) for c in (0, 1)]
    )


def rates(labels: np.ndarray, flagged: np.ndarray) -> tuple[float, float]:
    return float(flagged[labels == 1].mean()), float(1.0 - flagged[labels == 0].mean())


def calibration_table(
    scores: np.ndarray,
    labels: np.ndarray,
    patients: np.ndarray,
    frozen: float,
    sizes: list[int],
    draws: int,
    seed: int,
) -> pd.DataFrame:
    """One row per (K, rule): sensitivity and specificity on the rest, over the draws."""
    from components.pneumonia.evaluator import choose_threshold

    rows = []
    for k in sizes:
        rng = np.random.default_rng([seed, k])
        found: dict[str, list[tuple[float, float, float]]] = {r: [] for r in (*RULES, "frozen")}
        for _ in range(draws):
            chosen = stratified_draw(labels, k, rng)
            rest = ~np.isin(patients, patients[chosen])
            for rule in RULES:
                cut = choose_threshold(labels[chosen], scores[chosen], rule, TARGET_SENSITIVITY)
                found[rule].append((*rates(labels[rest], scores[rest] >= cut), cut))
            found["frozen"].append((*rates(labels[rest], scores[rest] >= frozen), frozen))
        for rule, values in found.items():
            sens, spec, cut = np.array(values).T
            rows.append(
                {
                    "K": k,
                    "threshold": rule if rule == "frozen" else f"{rule} on the K",
                    "sensitivity mean": sens.mean(),
                    "sensitivity p10": np.percentile(sens, 10),
                    "specificity mean": spec.mean(),
                    "specificity p10": np.percentile(spec, 10),
                    "threshold median": np.median(cut),
                }
            )
    return pd.DataFrame(rows)


def patient_subset(patients: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Every image of randomly drawn patients, until at least `size` images."""
    chosen: list[int] = []
    for patient in rng.permutation(np.unique(patients)):
        chosen += np.flatnonzero(patients == patient).tolist()
        if len(chosen) >= size:
            break
    return np.array(chosen)


def drift_rates(
    reference, held_out, site, subsets: int, sizes: list[int], seed: int
) -> dict[str, Any]:
    """Alarms on subsets of held-out patients, detections on the site's, and both whole.

    A subset holds every image of randomly drawn patients until it has at least `size`
    images; each is compared with the run's validation split by the rule the pipeline
    applies (components/shift.py)."""
    from components.shift import shift_report

    found: dict[str, Any] = {}
    for name, images in (("held-out patients", held_out), ("site", site)):
        for size in sizes:
            rng = np.random.default_rng([seed, len(name), size])
            verdicts = []
            for draw in range(subsets):
                chosen = patient_subset(images.patient_ids(), size, rng)
                report = shift_report(reference, subset(images, chosen), seed=draw)
                verdicts.append(
                    {
                        "drift": report["drift_detected"],
                        "n": len(chosen),
                        **{f"{t['test']} p": t["p_value"] for t in report["tests"]},
                        **{f"{t['test']} effect": t["effect"] for t in report["tests"]},
                    }
                )
            found[f"{name}, subsets of >= {size} images"] = pd.DataFrame(verdicts)
        whole = shift_report(reference, images, seed=seed)
        found[f"{name}, all {len(images.scores)} images"] = pd.DataFrame(
            [
                {
                    "drift": whole["drift_detected"],
                    "n": len(images.scores),
                    **{f"{t['test']} p": t["p_value"] for t in whole["tests"]},
                    **{f"{t['test']} effect": t["effect"] for t in whole["tests"]},
                }
            ]
        )
    return found


def drift_table(found: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per comparison: how often drift was detected, and the tests' medians."""
    return pd.DataFrame(
        [
            {
                "images compared with the run's validation split": name,
                "drift detected": f"{int(frame['drift'].sum())} / {len(frame)}",
                "median images": int(frame["n"].median()),
                "scores: median p": float(frame["scores p"].median()),
                "scores: median KS D": float(frame["scores effect"].median()),
                "features: median p": float(frame["features p"].median()),
                "features: median AUC": float(frame["features effect"].median()),
            }
            for name, frame in found.items()
        ]
    )


def markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = [
        "| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", required=True, type=Path, help="a finished pneumonia run")
    parser.add_argument("--site_dir", type=Path, default=SITE, help="NORMAL/ and PNEUMONIA/")
    parser.add_argument("--sizes", default="8,16,32,64", help="labelled site images K")
    parser.add_argument("--draws", type=int, default=500, help="seeded draws per K")
    parser.add_argument("--drift_subsets", type=int, default=20)
    parser.add_argument(
        "--drift_sizes", default="50,100", help="at least this many images per subset"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    metrics_path = args.run_dir / "evaluator" / "metrics.json"
    if not metrics_path.is_file() or not (args.run_dir / "transform" / "val").is_dir():
        print(f"error: {args.run_dir} is not a finished pneumonia run (no {metrics_path})")
        return 2
    if not args.site_dir.is_dir():
        print(f"skipped: no site images at {args.site_dir}")
        return 0
    from components.saved_splits import split_examples, split_images
    from components.trained_model import load_trained_model
    from datasets.chest_xray_pneumonia.file_names import patient_id

    start = time.time()
    metrics = json.loads(metrics_path.read_text())
    frozen = float(metrics["threshold"])
    model = load_trained_model(args.run_dir / "trainer")
    size = int(model.inputs[0].shape[1])
    examples, transform = args.run_dir / "example_gen", args.run_dir / "transform"
    val = split_examples(examples, transform, "val")
    reference = scored_set(
        model, val["path"].tolist(), split_images(transform, "val"), frozen, val["patient_id"]
    )
    test = split_examples(examples, transform, "test")
    held = (test["path"].map(lambda p: Path(p).parent.parent.name) == "train").to_numpy()
    test_images = split_images(transform, "test")
    held_out = subset(
        scored_set(model, test["path"].tolist(), test_images, frozen, test["patient_id"]), held
    )
    paths, images, labels = site_images(args.site_dir, size)
    site_patients = np.array([patient_id(Path(p).name) for p in paths])
    site = scored_set(model, paths, images, frozen, site_patients)
    table = calibration_table(
        site.scores,
        labels,
        site_patients,
        frozen,
        [int(k) for k in args.sizes.split(",")],
        args.draws,
        args.seed,
    )
    drift = drift_rates(
        reference,
        held_out,
        site,
        args.drift_subsets,
        [int(n) for n in args.drift_sizes.split(",")],
        args.seed,
    )
    print(
        f"{time.strftime('%Y-%m-%d')}, {cpu_name()}, {os.cpu_count()} cores, "
        f"{time.time() - start:.0f} s; run {args.run_dir} (image size {size}, frozen "
        f"threshold {frozen:.3f}, {metrics.get('threshold_rule')}); site {args.site_dir}: "
        f"{len(labels)} images ({int((labels == 0).sum())} NORMAL); {args.draws} draws per K; "
        f"target_sensitivity rule at {TARGET_SENSITIVITY}"
    )
    print(markdown(table))
    print()
    print(markdown(drift_table(drift)))
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "calibration": table.to_dict(orient="records"),
                    "drift": {
                        name: frame.to_dict(orient="records") for name, frame in drift.items()
                    },
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
