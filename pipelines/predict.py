"""python -m pipelines.predict: a trained run's model on new patients.

    python -m pipelines.predict --run_dir RUN PATH [PATH ...]

A pneumonia run scores chest X-ray files and folders (JPEG, PNG, DICOM, ...) at the run's
validation threshold, with a Grad-CAM overlay per image (components/pneumonia/predictor.py);
`--model FILE --threshold T` does the same for a model outside a run, and `--site
site.json` labels at a site's recalibrated threshold (pipelines.evaluate
--calibration_dir). A heart run scores a CSV of patients with each of its models
(components/heart/predictor.py). Results go to a new folder (`--out_dir`, default `<run>/predict-<timestamp>`), never over an earlier one.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

from absl import flags, logging

from components.artifacts import file_sha256, read_json
from components.errors import DataError
from components.explain.methods import METHODS
from components.trained_model import training_threshold
from pipelines import cli
from pipelines.cli import log_to_run_folder
from pipelines.runner import naming_failures

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "A finished run of pipelines.pneumonia or pipelines.heart.")
flags.DEFINE_string("model", None, "A saved pneumonia model (.keras) outside a run folder.")
flags.DEFINE_float(
    "threshold", None, "With --model: the decision threshold (default: the model's run's)."
)
flags.DEFINE_string(
    "site",
    None,
    "A site's site.json (pipelines.evaluate --calibration_dir writes it): label at the "
    "site's recalibrated threshold instead of the run's.",
)
flags.DEFINE_string(
    "out_dir", None, "Folder for the results (new; default <run_dir>/predict-<timestamp>)."
)
flags.DEFINE_list(
    "explain", ["gradcam"], f"Heatmaps per image: any of {','.join(METHODS)} (empty: none)."
)
flags.DEFINE_integer("batch_size", 32, "Images scored per batch.", lower_bound=1)
flags.DEFINE_integer(
    "seed", 42, "Seed of SHAP's background sample (--explain shap).", lower_bound=0
)
flags.DEFINE_boolean("quiet", False, "Print only the summary and errors.")

SHOWN_ROWS = 8


def new_out_dir(base: Path) -> Path:
    """`--out_dir` if new (or empty), else a DataError; default a new timestamped folder."""
    if FLAGS.out_dir:
        out_dir = Path(FLAGS.out_dir)
        if out_dir.exists() and any(out_dir.iterdir()):
            raise DataError(f"--out_dir {out_dir} exists and is not empty; choose a new folder")
        return out_dir
    stamp = f"predict-{dt.datetime.now():%Y%m%d-%H%M%S}"
    out_dir, n = base / stamp, 1
    while out_dir.exists():
        n += 1
        out_dir = base / f"{stamp}-{n}"
    return out_dir


def pneumonia_source(run_dir: Path | None) -> dict[str, Any]:
    """Model, threshold (and where it came from) and class names, from a run or --model."""
    model_path = Path(FLAGS.model) if FLAGS.model else run_dir / "trainer" / "model.keras"
    if not model_path.is_file():
        raise DataError(f"no trained model at {model_path}")
    home = model_path.parent.parent  # <run>/trainer/model.keras
    spec_path = home / "transform" / "transform.json"
    spec = read_json(spec_path) if spec_path.is_file() else {}
    threshold, source = FLAGS.threshold, "--threshold"
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise DataError(f"--threshold {threshold} is not between 0 and 1")
    if FLAGS.site:
        threshold, source = site_threshold(Path(FLAGS.site), model_path)
    if threshold is None:
        threshold, source = training_threshold(model_path) or (None, "")
    from components.pneumonia.model_import import load_model_checked

    outputs = int(load_model_checked(model_path).outputs[0].shape[-1])
    class_names = spec.get("class_names") or (
        ["NORMAL", "PNEUMONIA"] if outputs == 1 else ["NORMAL", "BACTERIA", "VIRUS"]
    )
    if outputs == 1 and threshold is None:
        raise DataError(
            f"no threshold for {model_path}: give --threshold (a run's is in "
            "<run>/evaluator/metrics.json) or use --run_dir"
        )
    finding_thresholds = None
    if spec.get("task") == "multilabel":
        finding_thresholds = run_finding_thresholds(home)
        threshold, source = None, f"{home / 'evaluator' / 'metrics.json'} (per finding)"
    elif outputs > 1:
        threshold, source = None, "argmax"
    methods = tuple(m for m in FLAGS.explain if m)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise DataError(f"--explain: unknown {','.join(unknown)}; choose from {','.join(METHODS)}")
    has_train = (home / "transform" / "train").is_dir()
    if "shap" in methods and not has_train:
        raise DataError(
            "--explain shap draws its background from the run's training images; "
            "use --run_dir with a finished run, or another method"
        )
    return {
        "ig_baseline": run_ig_baseline(home),
        "model_path": str(model_path.resolve()),
        "threshold": threshold,
        "threshold_source": source,
        "class_names": class_names,
        "methods": methods,
        "transform_dir": str(home / "transform") if has_train else None,
        **({"finding_thresholds": finding_thresholds} if finding_thresholds else {}),
    }


def run_finding_thresholds(run_dir: Path) -> dict[str, float]:
    """A multi-label run's per-finding thresholds (its Evaluator's), or a DataError."""
    if FLAGS.threshold is not None or FLAGS.site:
        raise DataError(
            "a multi-label model has one threshold per finding: drop --threshold/--site"
        )
    metrics_path = run_dir / "evaluator" / "metrics.json"
    thresholds = read_json(metrics_path).get("thresholds") if metrics_path.is_file() else None
    if not thresholds:
        raise DataError(
            f"no per-finding thresholds in {metrics_path} (run the pipeline to its end)"
        )
    return thresholds


def run_ig_baseline(run_dir: Path) -> str:
    """The IG baseline the run's Explainer used (its recorded parameters), so predict
    draws the run's own maps; the Explainer's default outside a run folder."""
    from components.explain.methods import DEFAULT_IG_BASELINE

    metadata = run_dir / "explainer" / "metadata.json"
    if metadata.is_file():
        return read_json(metadata).get("params", {}).get("ig_baseline", DEFAULT_IG_BASELINE)
    return DEFAULT_IG_BASELINE


def site_threshold(site_path: Path, model_path: Path) -> tuple[float, str]:
    """The threshold a site recalibrated for this very model (site.json), or a DataError."""
    if FLAGS.threshold is not None:
        raise DataError("give one of --site (a site's recalibrated threshold) or --threshold")
    try:
        site = read_json(site_path)
        threshold, sha = float(site["threshold"]), site["model_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(
            f"--site {site_path} is not a site.json of pipelines.evaluate --calibration_dir "
            f"({type(error).__name__}: {error})"
        ) from error
    if sha != file_sha256(model_path):
        raise DataError(
            f"--site {site_path} was calibrated for another model ({site.get('model')}); "
            f"its threshold does not apply to {model_path}"
        )
    return threshold, f"{site_path} (site_calibrated for {site.get('site')})"


def is_heart_run(run_dir: Path) -> bool:
    """The heart Trainer lists its models in trainer/summary.json; pneumonia's saves one."""
    trainer = run_dir / "trainer"
    return (trainer / "summary.json").is_file() and not (trainer / "model.keras").is_file()


def print_pneumonia_summary(result: dict[str, Any]) -> None:
    """Prints what predict did on images: the counts scored and skipped, the highest scores with
    their labels (`SHOWN_ROWS` of them), the first skipped files and why, and the page's path."""
    import pandas as pd

    table = pd.read_csv(result["predictions"], keep_default_na=False)
    scored = table[table["reason"] == ""].sort_values("score", ascending=False)
    print(f"{result['scored']} scored, {result['skipped']} skipped")
    for row in scored.head(SHOWN_ROWS).itertuples():
        print(f"  {float(row.score):.3f}  {row.label:10s} {Path(row.path).name}")
    if len(scored) > SHOWN_ROWS:
        print(f"  ... {len(scored) - SHOWN_ROWS} more in {result['predictions']}")
    for row in table[table["reason"] != ""].head(SHOWN_ROWS).itertuples():
        print(f"  skipped {Path(row.path).name}: {row.reason}")
    print(f"Page: {result['page']}")


def main(paths: list[str]) -> int:
    """`python -m pipelines.predict`: scores `paths` (images or folders, or a heart run's patient
    CSV) with a finished run's model (--run_dir) or a bare model (--model), into a new
    predict-<timestamp>/ folder, and prints a summary. Returns the exit status."""
    if FLAGS.quiet:
        logging.set_verbosity(logging.WARNING)
    if bool(FLAGS.run_dir) == bool(FLAGS.model):
        raise DataError("give exactly one of --run_dir (a finished run) or --model")
    if not paths:
        raise DataError("give the images (files or folders) or the patients' CSV to score")
    run_dir = Path(FLAGS.run_dir) if FLAGS.run_dir else None
    if run_dir and not (run_dir / "pipeline.json").is_file():
        raise DataError(f"--run_dir {run_dir} is not a finished run (no pipeline.json)")
    progress = sys.stderr.isatty() and not FLAGS.quiet
    if run_dir and is_heart_run(run_dir):
        from components.heart import predictor as heart_predictor

        if FLAGS.site:
            raise DataError("--site recalibrates a pneumonia model's threshold, not a heart run")
        out_dir = new_out_dir(run_dir)
        log_to_run_folder(out_dir, "predict")
        with naming_failures("predictor"):
            result = heart_predictor.run(out_dir, run_dir=str(run_dir), csv=paths)
        heart_predictor.print_summary(result)
        return 0
    from components.pneumonia import predictor

    source = pneumonia_source(run_dir)
    predictor.check_paths(paths)
    out_dir = new_out_dir(run_dir or Path("runs"))
    log_to_run_folder(out_dir, "predict")
    with naming_failures("predictor"):
        result = predictor.run(
            out_dir,
            paths=paths,
            batch_size=FLAGS.batch_size,
            seed=FLAGS.seed,
            progress=progress,
            **source,
        )
    print_pneumonia_summary(result)
    return 0


if __name__ == "__main__":
    cli.run(main, arguments=True)  # unlike the other entry points: the paths
