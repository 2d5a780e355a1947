"""python -m pipelines.evaluate: external validation of a trained model on labelled images.

Runs ExampleGen -> Transform -> ModelImport -> Evaluator into its own run folder, with
the same outputs as a training run's evaluator/ (metrics.json, predictions.csv, plots,
slices, report.html).

By default every image of the data is a test image, scored at the model's frozen
threshold: `--threshold`, or the one in `<run>/evaluator/metrics.json` when the model is
a run's `<run>/trainer/model.keras`. That is what a second hospital's evaluation means:
the decision rule is fixed before its images are seen. `--rethreshold` instead splits the
data as training does (validation by patient) and chooses a new threshold on its val.

A folder of images without NORMAL/ and PNEUMONIA/ is read unlabelled: scores, the share
flagged and the shift report, no metrics. Every evaluation writes `evaluator/shift.json`,
comparing the images with the training run's validation split (components/shift.py),
and prints one warning line when it detects drift. `--calibration_dir` (a site's
labelled images) chooses the operating point on them instead: metrics.json's
`threshold_rule` is then "site_calibrated", with the frozen threshold's figures on the
same images beside; `evaluator/site.json` records it for `pipelines.predict --site`, and
the run folder gets a site-specific `export/serving/` and a model card with the site.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

from absl import flags, logging

from components.artifacts import file_sha256, read_json
from components.errors import DataError
from components.trained_model import training_threshold
from pipelines import cli
from pipelines.cli import log_to_run_folder, summary
from pipelines.runner import PRESENTATION_FLAGS, Component, run_pipeline
from pipelines.shared_steps import (
    evaluator_component,
    example_gen_component,
    export_component,
)

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
flags.DEFINE_float(
    "threshold",
    None,
    "Decision threshold to score at (default: the training run's, from "
    "<run>/evaluator/metrics.json beside --model <run>/trainer/model.keras).",
)
flags.DEFINE_boolean(
    "rethreshold",
    False,
    "Choose a new threshold on this data instead: split it as training does (val by "
    "patient; --data_dir needs train/) and apply --threshold_rule on its val split. "
    "Not an external validation: the threshold has seen this data.",
)
flags.DEFINE_enum(
    "split",
    "test",
    ["test", "all"],
    "Which images of a Kaggle layout to evaluate: its test/ folder, or all of train/, "
    "val/ and test/. A folder with NORMAL/ and PNEUMONIA/ directly is read whole.",
)
flags.DEFINE_boolean("balance", False, "With --csv: downsample the larger class (seeded).")
flags.DEFINE_integer(
    "seed", 42, "Seed of the splits and the bootstrap (use the training run's).", lower_bound=0
)
flags.DEFINE_string("run_dir", None, "Run folder (default: runs/evaluate-<timestamp>).")
flags.DEFINE_string(
    "calibration_dir",
    None,
    "Labelled images of the new site (NORMAL/ and PNEUMONIA/): the operating point is "
    "chosen on them by the training run's --threshold_rule (threshold_rule "
    "site_calibrated) and --data_dir is scored with it; they never count in the metrics. "
    "Writes evaluator/site.json (pipelines.predict --site), export/serving and a model card.",
)
flags.DEFINE_enum(
    "threshold_rule",
    "youden",
    ["youden", "target_sensitivity"],
    "With --rethreshold: how the decision threshold is chosen on validation; with "
    "--calibration_dir: on the calibration images (default there: the training run's rule).",
)
flags.DEFINE_float(
    "target_sensitivity",
    0.95,
    "With --rethreshold or --calibration_dir: sensitivity to reach (--threshold_rule "
    "target_sensitivity).",
    lower_bound=0.0,
    upper_bound=1.0,
)
flags.DEFINE_integer(
    "bootstrap", 1000, "Bootstrap resamples for 95% confidence intervals.", lower_bound=0
)
flags.DEFINE_boolean("force", False, "Rerun every component even if a completed one matches.")
flags.DEFINE_boolean("quiet", False, "Print only warnings, errors and the final summary.")


def model_geometry(model_path: Path) -> tuple[int, str]:
    """Image size and task a saved model expects, read from its input and output shapes
    (several sigmoid units: one per finding, multilabel)."""
    import keras

    from components.pneumonia.model_import import load_model_checked

    model = load_model_checked(model_path)
    image_size = int(model.inputs[0].shape[1])
    head = model.layers[-1]
    units = model.outputs[0].shape[-1]
    if units > 1 and getattr(head, "activation", None) is keras.activations.sigmoid:
        return image_size, "multilabel"
    return image_size, "binary" if units == 1 else "three_class"


def frozen_finding_thresholds(model_path: Path) -> dict[str, Any]:
    """A multi-label model's findings and frozen per-finding thresholds, from the run it
    was trained in (<run>/transform/transform.json, <run>/evaluator/metrics.json); with
    --rethreshold only the findings (thresholds are chosen on this data's val)."""
    run = model_path.parent.parent
    spec_path, metrics_path = (
        run / "transform" / "transform.json",
        run / "evaluator" / "metrics.json",
    )
    if model_path.parent.name != "trainer" or not spec_path.is_file():
        raise DataError(
            f"--model {model_path}: a multi-label model is evaluated from its run folder "
            "(<run>/trainer/model.keras), where its findings and thresholds are"
        )
    findings = read_json(spec_path)["class_names"]
    if FLAGS.rethreshold:
        return {"findings": findings}
    if FLAGS.threshold is not None:
        raise DataError("--threshold is one threshold; a multi-label model has one per finding")
    thresholds = read_json(metrics_path).get("thresholds") if metrics_path.is_file() else None
    if not thresholds:
        raise DataError(f"no per-finding thresholds in {metrics_path}; use --rethreshold")
    return {
        "findings": findings,
        "frozen_thresholds": thresholds,
        "threshold_source": f"{metrics_path} (youden_on_val per finding)",
    }


def frozen_threshold(model_path: Path, task: str) -> tuple[float | None, str | None]:
    """The threshold external validation scores at, or a DataError saying how to give one."""
    if task != "binary" or FLAGS.rethreshold:
        return None, None
    if FLAGS.threshold is not None:
        if not 0.0 <= FLAGS.threshold <= 1.0:
            raise DataError(f"--threshold {FLAGS.threshold} is not between 0 and 1")
        return FLAGS.threshold, "--threshold"
    found = training_threshold(model_path)
    if found is None and FLAGS.calibration_dir:
        return None, None  # the site's threshold alone, with nothing frozen beside it
    if found is None:
        raise DataError(
            f"no threshold for --model {model_path}: give --threshold (a training run's is "
            "in <run>/evaluator/metrics.json), or --rethreshold to choose one on this data"
        )
    return found


def site_threshold_rule(model_path: Path) -> tuple[str, float]:
    """The rule a site's threshold is chosen by: --threshold_rule when given, else the
    training run's own (so the site's operating point means what the run's meant)."""
    if FLAGS["threshold_rule"].present:
        return FLAGS.threshold_rule, FLAGS.target_sensitivity
    metrics_path = model_path.parent.parent / "evaluator" / "metrics.json"
    metrics = read_json(metrics_path) if metrics_path.is_file() else {}
    rule = str(metrics.get("threshold_rule", "youden_on_val")).removesuffix("_on_val")
    if rule not in ("youden", "target_sensitivity"):
        return FLAGS.threshold_rule, FLAGS.target_sensitivity
    return rule, float(metrics.get("target_sensitivity", FLAGS.target_sensitivity))


def check_site_flags(task: str) -> None:
    """Refuses flags that cannot go together before any step runs: --calibration_dir with
    --rethreshold (two ways of choosing the threshold), or with a model that is not binary."""
    if not FLAGS.calibration_dir:
        return
    if FLAGS.rethreshold:
        raise DataError(
            "give one of --calibration_dir (the site's labelled images choose the threshold) "
            "or --rethreshold (this data's own val split chooses it)"
        )
    if task != "binary":
        raise DataError(
            "--calibration_dir chooses a binary model's threshold; this model has classes"
        )


def print_site_lines(run_dir: Path) -> None:
    """What recalibration changed, and where its results are."""
    metrics = read_json(run_dir / "evaluator" / "metrics.json")
    calibration = metrics["calibration"]
    low, high = calibration["threshold_ci95"]
    print(
        f"  site threshold {metrics['threshold']:.3f} [{low:.3f}, {high:.3f}] "
        f"({calibration['rule']} on {calibration['n']} calibration images)"
    )
    frozen = metrics.get("frozen")
    if frozen and "test" in metrics:
        print(
            f"  at the frozen threshold {frozen['threshold']:.3f}: sensitivity "
            f"{frozen['test']['sensitivity']:.3f}  specificity {frozen['test']['specificity']:.3f}"
        )
    print(f"Site operating point: {run_dir / 'evaluator' / 'site.json'} (pipelines.predict --site)")
    print(f"Site serving model: {run_dir / 'export' / 'serving'}")


def print_unlabelled_lines(run_dir: Path) -> None:
    """Prints the closing lines of an unlabelled folder's evaluation: images scored, the number and
    share flagged, and why there are no metrics."""
    found = read_json(run_dir / "evaluator" / "metrics.json")["unlabelled"]
    print(
        f"  {found['n']} unlabelled images scored, {found['flagged']} flagged "
        f"({found['flagged_share']:.1%}); no metrics without NORMAL/ and PNEUMONIA/ folders"
    )


def check_required_flags() -> None:
    """--model and exactly one data source, before any model is read."""
    if not FLAGS.model:
        raise DataError("--model is required (a saved .keras file)")
    if bool(FLAGS.data_dir) == bool(FLAGS.csv):
        raise DataError("give exactly one of --data_dir or --csv")


def evaluation_components(
    model_path: Path,
    image_size: int,
    task: str,
    frozen: tuple[float | None, str | None],
    rule: tuple[str, float],
    flag_values: dict[str, Any],
    multilabel: dict[str, Any],
) -> list[Component]:
    """ExampleGen, Transform, the model in the Trainer's place and the Evaluator at the
    `frozen` (threshold, source) or by `rule` (rule, target sensitivity); with
    --calibration_dir also the export, the serving model with the site's threshold.
    `multilabel` (frozen_finding_thresholds): a multi-label model's findings, which the
    Transform labels by, and its frozen per-finding thresholds."""
    from components.pneumonia import model_import, transform

    data_name = Path(FLAGS.data_dir).resolve().name if FLAGS.data_dir else Path(FLAGS.csv).stem
    external = None if FLAGS.rethreshold else FLAGS.split
    components = [
        example_gen_component(
            FLAGS.data_dir,
            FLAGS.csv,
            task=task,
            seed=FLAGS.seed,
            balance=FLAGS.balance,
            external=external,
            calibration_dir=FLAGS.calibration_dir,
        ),
        Component(
            "transform",
            transform.run,
            dict(
                image_size=image_size,
                task=task,
                **({"findings": tuple(multilabel["findings"])} if multilabel else {}),
            ),
            inputs={"examples": "example_gen"},
        ),
        Component(
            "trainer",
            model_import.run,
            dict(model_path=str(model_path)),
            cache_key={"model_sha256": file_sha256(model_path)},
            uses_tensorboard=False,
        ),
        evaluator_component(
            threshold_rule=rule[0],
            target_sensitivity=rule[1],
            bootstrap=FLAGS.bootstrap,
            seed=FLAGS.seed,
            run_flags=flag_values,
            frozen_threshold=frozen[0],
            threshold_source=frozen[1] or multilabel.get("threshold_source"),
            frozen_thresholds=multilabel.get("frozen_thresholds"),
            # The shift report's reference: the run the model was trained in (its
            # validation split); shift.json says so when there is none.
            site=dict(
                reference_run=str(model_path.parent.parent),
                **(
                    dict(
                        calibration_dir=str(Path(FLAGS.calibration_dir).resolve()),
                        site_name=data_name,
                    )
                    if FLAGS.calibration_dir
                    else {}
                ),
            ),
        ),
    ]
    if FLAGS.calibration_dir:  # the serving model with the site's threshold in its graph
        components.append(export_component())
    return components


def print_results(run_dir: Path, model_path: Path, metrics: dict[str, Any]) -> None:
    """The closing summary, the unlabelled or site lines, the site's model card (written
    here, from the finished steps' artifacts) and a drift warning on stderr."""
    from components.reporting.model_card import write_site_model_card
    from components.shift import warning_line

    print(summary(run_dir))
    if "unlabelled" in metrics:
        print_unlabelled_lines(run_dir)
    if FLAGS.calibration_dir:
        print_site_lines(run_dir)
        card = write_site_model_card(
            run_dir, model_path.parent.parent, read_json(run_dir / "evaluator" / "site.json")
        )
        print(f"Model card: {card}")
    shift = read_json(run_dir / "evaluator" / "shift.json")
    if shift.get("drift_detected"):
        print(f"warning: {warning_line(shift)}", file=sys.stderr)


def main() -> int:
    """`python -m pipelines.evaluate`: reads the model's image size, task and frozen threshold, runs
    the evaluation steps into a new run folder (or the one given), logs the HParams session, writes
    the site's model card with --calibration_dir, and prints the results. Returns the exit status.
    """
    from components.reporting.hparams import numeric_leaves

    if FLAGS.quiet:
        logging.set_verbosity(logging.WARNING)
    check_required_flags()
    model_path = Path(FLAGS.model).resolve()
    image_size, task = model_geometry(model_path)
    check_site_flags(task)
    frozen = frozen_threshold(model_path, task)
    multilabel = frozen_finding_thresholds(model_path) if task == "multilabel" else {}
    rule = (
        site_threshold_rule(model_path)
        if FLAGS.calibration_dir
        else (FLAGS.threshold_rule, FLAGS.target_sensitivity)
    )
    run_dir = Path(FLAGS.run_dir or f"runs/evaluate-{dt.datetime.now():%Y%m%d-%H%M%S}")
    flag_values = {
        f.name: f.value
        for f in FLAGS.get_flags_for_module(__name__)
        if f.name not in PRESENTATION_FLAGS
    }
    cli.write_flagfile(run_dir, list(flag_values), "pipelines.evaluate")
    log_to_run_folder(run_dir)
    components = evaluation_components(
        model_path, image_size, task, frozen, rule, flag_values, multilabel
    )
    run_pipeline(components, run_dir, flag_values, force=FLAGS.force)
    metrics = read_json(run_dir / "evaluator" / "metrics.json")
    cli.log_hparams(run_dir, flag_values, numeric_leaves(metrics, [(), ("val",), ("test",)]))
    print_results(run_dir, model_path, metrics)
    return 0


if __name__ == "__main__":
    cli.run(main)
