"""The development site and the proxies of a new acquisition, for several training
configurations side by side.

The primary measure is the development site (../shared/data/chest_xray_site: half of
the official test split, a later acquisition; never trained on): accuracy, AUC,
sensitivity, specificity and ECE at the run's frozen validation threshold, with 95%
bootstrap intervals (each official test image is its own patient, Kermany et al. 2018,
so resampling images resamples patients). Beside it, the proxies used before the site
was available, so we learn which of them track it:

- leave-one-batch-out: the training normals come from one naming batch only (`IM-...` or
  `NORMAL2-IM-...`; pneumonia as usual, split by patient); every normal of the other
  batch is then scored at the run's validation threshold (specificity, mean score);
- the 16 official val images (full resolution, a later acquisition): correct of 16 and
  the mean score of their 8 normals;
- `benchmarks/acquisition_shift.py`'s perturbations of the held-out test images, at the
  run's threshold (the worst specificity and sensitivity over all changes);
- patients held out of train (accuracy, AUC, sensitivity, specificity, ECE).

Each (configuration, scenario) is one real `python -m pipelines.pneumonia` run into
`<out>/<config>/<scenario>/`; rerunning the same command skips finished runs.

    python benchmarks/shift.py [--configs baseline,robust] [--out runs/shift] [--epochs N]
        [--site_only]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.machine import cpu_name  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "chest_xray"
SITE = REPO.parent / "shared" / "data" / "chest_xray_site"

# Extra flags of `python -m pipelines.pneumonia` per configuration.
CONFIGS: dict[str, list[str]] = {
    "default": [],  # the command line's defaults, whatever they are today
    "default_160": ["--image_size", "160"],
    "default_192": ["--image_size", "192"],
    "baseline": ["--normalization", "rescale", "--acquisition_augmentation", "0"],
    "standardize": ["--normalization", "standardize", "--acquisition_augmentation", "0"],
    "acquisition": ["--normalization", "rescale", "--acquisition_augmentation", "1"],
    "robust": ["--normalization", "standardize", "--acquisition_augmentation", "1"],
    "baseline_ce": [
        "--normalization",
        "rescale",
        "--acquisition_augmentation",
        "0",
        "--loss",
        "cross_entropy",
    ],
    "robust_ce": [
        "--normalization",
        "standardize",
        "--acquisition_augmentation",
        "1",
        "--loss",
        "cross_entropy",
    ],
    "baseline_ce_160": [
        "--normalization",
        "rescale",
        "--acquisition_augmentation",
        "0",
        "--loss",
        "cross_entropy",
        "--image_size",
        "160",
    ],
    "robust_160": [
        "--normalization",
        "standardize",
        "--acquisition_augmentation",
        "1",
        "--image_size",
        "160",
    ],
}
BATCHES = {"IM": "IM-", "NORMAL2": "NORMAL2-"}
SCENARIOS = ("all", "IM_only", "NORMAL2_only")


def batch_of(name: str) -> str:
    return "NORMAL2" if name.startswith(BATCHES["NORMAL2"]) else "IM"


def scenario_data(scenario: str, root: Path) -> Path:
    """The Kaggle folder a scenario trains on: all of it, or one batch of normals."""
    if scenario == "all":
        return DATA
    keep = scenario.removesuffix("_only")
    folder = root / "data" / scenario
    for sub in ("NORMAL", "PNEUMONIA"):
        (folder / "train" / sub).mkdir(parents=True, exist_ok=True)
    for image in sorted((DATA / "train" / "NORMAL").iterdir()):
        link = folder / "train" / "NORMAL" / image.name
        if batch_of(image.name) == keep and not link.exists():
            link.symlink_to(image)
    for image in sorted((DATA / "train" / "PNEUMONIA").iterdir()):
        link = folder / "train" / "PNEUMONIA" / image.name
        if not link.exists():
            link.symlink_to(image)
    return folder


def run_pipeline(data_dir: Path, run_dir: Path, flags: list[str]) -> float:
    """One pipeline run; its wall time in seconds (0 when it had finished before)."""
    record = run_dir / "pipeline.json"
    if record.is_file() and json.loads(record.read_text()).get("status") == "completed":
        return float(sum(json.loads(record.read_text()).get("durations_s", {}).values()))
    command = [
        sys.executable,
        "-m",
        "pipelines.pneumonia",
        "--data_dir",
        str(data_dir),
        "--run_dir",
        str(run_dir),
        "--explain",
        "gradcam",
        "--quiet",
        *flags,
    ]
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return time.perf_counter() - start


def scores_of_files(run_dir: Path, paths: list[str]) -> np.ndarray:
    """The run's model on image files, through the Transform's own decoding."""
    import tensorflow as tf

    from components.images import decode_file
    from components.saved_splits import load_spec
    from components.trained_model import load_trained_model

    size = load_spec(run_dir / "transform")["image_size"]
    model = load_trained_model(run_dir / "trainer")
    ds = (
        tf.data.Dataset.from_tensor_slices(paths)
        .map(
            lambda p: tf.cast(decode_file(p, size), tf.float32),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .batch(64)
    )
    return np.asarray(model.predict(ds, verbose=0))[:, 0]


def held_out_figures(run_dir: Path) -> dict[str, float]:
    """Held-out patients, the 16 official val images, and perturbations, at the threshold."""
    from sklearn import metrics as skm

    from benchmarks.acquisition_shift import CHANGES
    from components.clinical_metrics import binary_metrics
    from components.saved_splits import split_images, split_labels
    from components.trained_model import load_trained_model

    metrics = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    threshold = metrics["threshold"]
    predictions = pd.read_csv(run_dir / "evaluator" / "predictions.csv")
    test = predictions[predictions["split"] == "test"]
    official = test["path"].str.contains("/val/")
    held = test[~official]
    y = (held["label"] == "PNEUMONIA").to_numpy(int)
    m = binary_metrics(y, held["score"].to_numpy(), threshold)
    val16 = test[official]
    val16_y = (val16["label"] == "PNEUMONIA").to_numpy(int)
    val16_flagged = val16["score"].to_numpy() >= threshold
    out = {
        "threshold": threshold,
        "held_n": len(held),
        "held_accuracy": m["accuracy"],
        "held_auc": m["auc"],
        "held_sensitivity": m["sensitivity"],
        "held_specificity": m["specificity"],
        "held_ece": m["ece"],
        "val16_correct": int(np.sum(val16_flagged == val16_y)),
        "val16_n": len(val16),
        "val16_normal_mean": float(val16["score"][val16_y == 0].mean()),
    }
    model = load_trained_model(run_dir / "trainer")
    images = split_images(run_dir / "transform", "test").astype("float32")
    labels = split_labels(run_dir / "transform", "test")
    worst_spec, worst_sens, worst_auc = 1.0, 1.0, 1.0
    for change in CHANGES.values():
        scores = model.predict(np.clip(change(images), 0, 255), batch_size=128, verbose=0)[:, 0]
        flagged = scores >= threshold
        worst_auc = min(worst_auc, skm.roc_auc_score(labels, scores))
        worst_sens = min(worst_sens, float(flagged[labels == 1].mean()))
        worst_spec = min(worst_spec, float(1 - flagged[labels == 0].mean()))
    out.update(
        perturbed_worst_auc=worst_auc,
        perturbed_worst_sensitivity=worst_sens,
        perturbed_worst_specificity=worst_spec,
    )
    out.update(platt_ece(predictions, official))
    # The same run at the other threshold rule: 95% sensitivity on validation.
    cut = sensitivity_rule_threshold(run_dir)
    m95 = binary_metrics(y, held["score"].to_numpy(), cut, resamples=0)
    out.update(
        threshold_sens95=cut,
        held_accuracy_sens95=m95["accuracy"],
        held_sensitivity_sens95=m95["sensitivity"],
        held_specificity_sens95=m95["specificity"],
        val16_correct_sens95=int(np.sum((val16["score"].to_numpy() >= cut) == val16_y)),
    )
    return out


SITE_KEYS = ("accuracy", "auc", "sensitivity", "specificity", "ece")


def site_figures(run_dir: Path) -> dict[str, float]:
    """The development site at the run's frozen threshold, with bootstrap intervals."""
    from components.clinical_metrics import binary_metrics

    if not SITE.is_dir():
        return {}
    paths, labels = [], []
    for label, folder in ((0, "NORMAL"), (1, "PNEUMONIA")):
        files = sorted(p for p in (SITE / folder).iterdir() if p.is_file())
        paths += [str(p) for p in files]
        labels += [label] * len(files)
    threshold = json.loads((run_dir / "evaluator" / "metrics.json").read_text())["threshold"]
    m = binary_metrics(np.asarray(labels), scores_of_files(run_dir, paths), threshold)
    out = {f"site_{key}": m[key] for key in SITE_KEYS}
    out.update({f"site_{key}_ci95": m[f"{key}_ci95"] for key in SITE_KEYS if f"{key}_ci95" in m})
    out["site_n"] = m["n"]
    return out


def platt_ece(predictions: pd.DataFrame, official: pd.Series) -> dict[str, float]:
    """ECE of held-out patients and of the 16 official val images after Platt scaling
    (a logistic fit of the validation logits, Platt 1999): does recalibrating on
    validation carry over to a new acquisition?"""
    from sklearn.linear_model import LogisticRegression

    from components.clinical_metrics import expected_calibration_error

    p = np.clip(predictions["score"].to_numpy(), 1e-7, 1 - 1e-7)
    logit = np.log(p / (1 - p)).reshape(-1, 1)
    y = (predictions["label"] == "PNEUMONIA").to_numpy(int)
    val = (predictions["split"] == "val").to_numpy()
    calibrated = LogisticRegression().fit(logit[val], y[val]).predict_proba(logit)[:, 1]
    test = (predictions["split"] == "test").to_numpy()
    held, val16 = test.copy(), test.copy()
    held[test] = ~official.to_numpy()
    val16[test] = official.to_numpy()
    return {
        "held_ece_platt": expected_calibration_error(y[held], calibrated[held]),
        "val16_ece": expected_calibration_error(y[val16], predictions["score"].to_numpy()[val16]),
        "val16_ece_platt": expected_calibration_error(y[val16], calibrated[val16]),
    }


def sensitivity_rule_threshold(run_dir: Path, target: float = 0.95) -> float:
    """`--threshold_rule target_sensitivity` on the run's own validation predictions."""

    from components.pneumonia.evaluator import choose_threshold

    predictions = pd.read_csv(run_dir / "evaluator" / "predictions.csv")
    val = predictions[predictions["split"] == "val"]
    return choose_threshold(
        (val["label"] == "PNEUMONIA").to_numpy(int),
        val["score"].to_numpy(),
        "target_sensitivity",
        target,
    )


def other_batch_figures(run_dir: Path, scenario: str) -> dict[str, float]:
    """Every training normal of the batch this run never saw, at its threshold."""

    kept = scenario.removesuffix("_only")
    other = [
        str(p) for p in sorted((DATA / "train" / "NORMAL").iterdir()) if batch_of(p.name) != kept
    ]
    threshold = json.loads((run_dir / "evaluator" / "metrics.json").read_text())["threshold"]
    scores = scores_of_files(run_dir, other)
    return {
        "other_n": len(other),
        "other_specificity": float(np.mean(scores < threshold)),
        "other_specificity_sens95": float(np.mean(scores < sensitivity_rule_threshold(run_dir))),
        "other_mean_score": float(scores.mean()),
        "threshold": threshold,
    }


def measure(
    config: str, out: Path, extra: list[str], scenarios: tuple[str, ...] = SCENARIOS
) -> dict[str, float]:
    result: dict[str, float] = {"wall_s": 0.0}
    for scenario in scenarios:
        run_dir = out / config / scenario
        wall = run_pipeline(scenario_data(scenario, out), run_dir, CONFIGS[config] + extra)
        result["wall_s"] += wall
        result[f"{scenario}_wall_s"] = wall
        if scenario == "all":
            result.update(site_figures(run_dir))
            result.update(held_out_figures(run_dir))
        else:
            figures = other_batch_figures(run_dir, scenario)
            result[f"{scenario}_other_specificity"] = figures["other_specificity"]
            result[f"{scenario}_other_mean_score"] = figures["other_mean_score"]
            result[f"{scenario}_other_specificity_sens95"] = figures["other_specificity_sens95"]
    (out / config / "shift.json").write_text(json.dumps(result, indent=2))
    return result


def table(results: dict[str, dict[str, float]]) -> str:
    rows = [
        *((f"development site: {key}", f"site_{key}", "{:.3f}") for key in SITE_KEYS),
        ("held-out patients: accuracy", "held_accuracy", "{:.3f}"),
        ("held-out patients: AUC", "held_auc", "{:.3f}"),
        ("held-out patients: sensitivity", "held_sensitivity", "{:.3f}"),
        ("held-out patients: specificity", "held_specificity", "{:.3f}"),
        ("held-out patients: ECE", "held_ece", "{:.3f}"),
        ("held-out patients: ECE after Platt scaling on val", "held_ece_platt", "{:.3f}"),
        ("16 official val: correct", "val16_correct", "{:.0f}/16"),
        ("16 official val: ECE", "val16_ece", "{:.3f}"),
        ("16 official val: ECE after Platt scaling on val", "val16_ece_platt", "{:.3f}"),
        ("16 official val: mean normal score", "val16_normal_mean", "{:.2f}"),
        ("trained on IM normals: NORMAL2 specificity", "IM_only_other_specificity", "{:.3f}"),
        ("trained on NORMAL2 normals: IM specificity", "NORMAL2_only_other_specificity", "{:.3f}"),
        ("perturbed: worst specificity", "perturbed_worst_specificity", "{:.3f}"),
        ("perturbed: worst sensitivity", "perturbed_worst_sensitivity", "{:.3f}"),
        ("perturbed: worst AUC", "perturbed_worst_auc", "{:.3f}"),
        ("threshold (Youden on val)", "threshold", "{:.3f}"),
        ("at 95% val sensitivity: threshold", "threshold_sens95", "{:.3f}"),
        ("at 95% val sensitivity: held-out accuracy", "held_accuracy_sens95", "{:.3f}"),
        ("at 95% val sensitivity: held-out sensitivity", "held_sensitivity_sens95", "{:.3f}"),
        ("at 95% val sensitivity: held-out specificity", "held_specificity_sens95", "{:.3f}"),
        ("at 95% val sensitivity: 16 official val correct", "val16_correct_sens95", "{:.0f}/16"),
        (
            "at 95% val sensitivity: NORMAL2 specificity (IM-trained)",
            "IM_only_other_specificity_sens95",
            "{:.3f}",
        ),
        (
            "at 95% val sensitivity: IM specificity (NORMAL2-trained)",
            "NORMAL2_only_other_specificity_sens95",
            "{:.3f}",
        ),
        ("wall time, default run (min)", "all_wall_s", "{:.1f}"),
    ]
    names = list(results)
    lines = ["| proxy | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, key, form in rows:
        cells = []
        for name in names:
            value = results[name].get(key)
            if key == "all_wall_s" and value is not None:
                value = value / 60
            cell = form.format(value) if value is not None else "-"
            interval = results[name].get(f"{key}_ci95")
            if interval is not None:
                cell += " [{:.3f}, {:.3f}]".format(*interval)
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs", default="baseline,robust", help=f"comma-separated, from {', '.join(CONFIGS)}"
    )
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "shift")
    parser.add_argument("--epochs", type=int, default=None, help="cap every run's epochs")
    parser.add_argument(
        "--site_only",
        action="store_true",
        help="only the run on all of train (the site and held-out figures), no batch runs",
    )
    args, passed_on = parser.parse_known_args()  # other flags go to every pipeline run
    if not (DATA / "train").is_dir():
        print(f"skipped: no data at {DATA}")
        return 0
    unknown = [c for c in args.configs.split(",") if c not in CONFIGS]
    if unknown:
        print(f"error: unknown configuration {unknown[0]!r} (known: {', '.join(CONFIGS)})")
        return 2
    extra = (["--epochs", str(args.epochs)] if args.epochs else []) + passed_on
    results = {}
    for config in args.configs.split(","):
        scenarios = ("all",) if args.site_only else SCENARIOS
        results[config] = measure(config, args.out.resolve(), extra, scenarios)
        print(f"{config}: {json.dumps(results[config])}", flush=True)
    print(
        f"{time.strftime('%Y-%m-%d')}, {cpu_name()}, {os.cpu_count()} cores"
        + (f", extra flags {' '.join(extra)}" if extra else "")
    )
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
