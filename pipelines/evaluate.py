"""python -m pipelines.evaluate: evaluate any saved model on any Kaggle folder or CSV.

Runs ExampleGen -> Transform -> ModelImport -> Evaluator into its own run folder, with
the same outputs as a training run's evaluator/ (metrics.json, predictions.csv, plots,
report.html). With the data, --seed and threshold flags of a finished run, it reproduces
that run's metrics from its saved model.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from absl import flags, logging

from components.artifacts import file_sha256, read_json
from components.errors import DataError
from pipelines import cli
from pipelines.cli import log_to_run_folder, summary
from pipelines.runner import PRESENTATION_FLAGS, Component, run_pipeline
from pipelines.shared_steps import evaluator_component, example_gen_component

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "model", None, "Saved Keras model (.keras), e.g. <run_dir>/trainer/model.keras."
)
flags.DEFINE_string(
    "data_dir",
    None,
    "Kaggle layout: train/, optional val/ and test/, each with NORMAL/ and PNEUMONIA/.",
)
flags.DEFINE_string("csv", None, "NIH ChestX-ray14-style CSV with image_path,label columns.")
flags.DEFINE_boolean("balance", False, "With --csv: downsample the larger class (seeded).")
flags.DEFINE_integer("seed", 42, "Seed of the splits and the bootstrap (use the training run's).")
flags.DEFINE_string("run_dir", None, "Run folder (default: runs/evaluate-<timestamp>).")
flags.DEFINE_enum(
    "threshold_rule",
    "youden",
    ["youden", "target_sensitivity"],
    "How the decision threshold is chosen on validation.",
)
flags.DEFINE_float(
    "target_sensitivity",
    0.95,
    "Sensitivity to reach on validation with --threshold_rule target_sensitivity.",
)
flags.DEFINE_integer("bootstrap", 1000, "Bootstrap resamples for 95% confidence intervals.")
flags.DEFINE_boolean("force", False, "Rerun every component even if a completed one matches.")
flags.DEFINE_boolean("quiet", False, "Print only warnings, errors and the final summary.")


def model_geometry(model_path: Path) -> tuple[int, str]:
    """Image size and task a saved model expects, read from its input and output shapes."""
    from components.pneumonia.model_import import load_model_checked

    model = load_model_checked(model_path)
    image_size = int(model.inputs[0].shape[1])
    task = "binary" if model.outputs[0].shape[-1] == 1 else "three_class"
    return image_size, task


def main() -> int:
    from components.pneumonia import model_import, transform
    from components.reporting.hparams import numeric_leaves

    if FLAGS.quiet:
        logging.set_verbosity(logging.WARNING)
    if not FLAGS.model:
        raise DataError("--model is required (a saved .keras file)")
    if bool(FLAGS.data_dir) == bool(FLAGS.csv):
        raise DataError("give exactly one of --data_dir or --csv")
    model_path = Path(FLAGS.model).resolve()
    image_size, task = model_geometry(model_path)
    run_dir = Path(FLAGS.run_dir or f"runs/evaluate-{dt.datetime.now():%Y%m%d-%H%M%S}")
    flag_values = {
        f.name: f.value
        for f in FLAGS.get_flags_for_module(__name__)
        if f.name not in PRESENTATION_FLAGS
    }
    cli.write_flagfile(run_dir, list(flag_values), "pipelines.evaluate")
    log_to_run_folder(run_dir)
    components = [
        example_gen_component(
            FLAGS.data_dir, FLAGS.csv, task=task, seed=FLAGS.seed, balance=FLAGS.balance
        ),
        Component(
            "transform",
            transform.run,
            dict(image_size=image_size, task=task),
            inputs={"examples": "example_gen"},
        ),
        Component(
            "trainer",
            model_import.run,
            dict(model_path=str(model_path)),
            cache_key={"model_sha256": file_sha256(model_path)},
        ),
        evaluator_component(
            threshold_rule=FLAGS.threshold_rule,
            target_sensitivity=FLAGS.target_sensitivity,
            bootstrap=FLAGS.bootstrap,
            seed=FLAGS.seed,
            run_flags=flag_values,
        ),
    ]
    run_pipeline(components, run_dir, flag_values, force=FLAGS.force)
    metrics = read_json(run_dir / "evaluator" / "metrics.json")
    cli.log_hparams(run_dir, flag_values, numeric_leaves(metrics, [(), ("val",), ("test",)]))
    print(summary(run_dir))
    return 0


if __name__ == "__main__":
    cli.run(main)
