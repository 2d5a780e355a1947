"""python -m pipelines.pneumonia: ExampleGen -> Transform -> Trainer -> Evaluator -> Explainer.

With no --data_dir / --csv and nothing at data/chest_xray, runs on the synthetic_cxr
builder (phantom radiographs with known lesion masks) and says so.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from absl import flags, logging

from components import distribution
from components.artifacts import read_json
from components.augmentation import DEFAULT_ACQUISITION
from components.errors import DataError
from components.explain.integrated_gradients import BASELINES
from components.explain.methods import DEFAULT_IG_BASELINE, DEFAULT_METHODS, METHODS
from components.pneumonia.example_gen import TEST_FRACTION, VAL_FRACTION
from components.pneumonia.trainer import EPOCHS
from components.reporting.hparams import numeric_leaves
from components.reporting.model_card import write_model_card
from models import MODEL_NAMES, min_image_size
from models.cnn import DEFAULT_NORMALIZATION, NORMALIZATIONS
from models.losses import DEFAULT_LOSS, LOSSES
from models.self_training import ADAPT_EPOCHS, ADAPT_FRACTION, ADAPT_ROUNDS
from pipelines import cli
from pipelines.cli import data_fingerprint, log_to_run_folder, summary
from pipelines.runner import PRESENTATION_FLAGS, Component, run_as_worker, run_pipeline
from pipelines.shared_steps import (
    evaluator_component,
    example_gen_component,
    export_component,
)

DEFAULT_DATA_DIR = Path("data/chest_xray")

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "data_dir",
    None,
    "Kaggle layout: train/, optional val/ and test/, each with NORMAL/ and PNEUMONIA/.",
)
flags.DEFINE_string("csv", None, "NIH ChestX-ray14-style CSV with image_path,label columns.")
flags.DEFINE_boolean(
    "balance", False, "With --csv: downsample the larger class (seeded) to balance classes."
)
flags.DEFINE_enum(
    "near_duplicates",
    "report",
    ["report", "remove"],
    "Val/test images that look like a train image resized, re-encoded, slightly cropped "
    "or re-exposed (perceptual hash): report them in example_gen/stats.json and keep them, "
    "or remove them from val/test. Byte-identical copies are always removed.",
)
flags.DEFINE_enum(
    "task",
    "binary",
    ["binary", "three_class", "multilabel"],
    "binary (normal/pneumonia), three_class (normal/bacterial/viral), or multilabel (with "
    "--csv: one sigmoid per NIH finding seen in training; No Finding is none).",
)
flags.DEFINE_float(
    "val_fraction",
    VAL_FRACTION,
    "Share of the patients held out of train as val when the data has no val split (a CSV "
    "without --split_lists, or a Kaggle folder whose val/ is missing or tiny).",
    lower_bound=0.01,
    upper_bound=0.5,
)
flags.DEFINE_float(
    "test_fraction",
    TEST_FRACTION,
    "Share of the patients held out as test when the data has no test split (a CSV without "
    "--split_lists, or a Kaggle folder without test/), as one of round(1/share) folds "
    "(0.3: a third). Raise it for a small sample, so that a finding has positives from "
    "enough patients to be measured.",
    lower_bound=0.01,
    upper_bound=0.5,
)
flags.DEFINE_string(
    "split_lists",
    None,
    "--task multilabel: a folder with NIH's train_val_list.txt and test_list.txt; test is "
    "test_list's images, val is held out of train_val's by patient.",
)
flags.DEFINE_enum(
    "model",
    "cnn",
    list(MODEL_NAMES),
    "Model architecture (models/): the compact CNN, the CNN-LSTM hybrid, or a keras.applications backbone.",
)
flags.DEFINE_string(
    "weights", "none", "Backbone weights: none, imagenet or a path (transfer models)."
)
flags.DEFINE_integer(
    "image_size",
    128,
    "Images are resized to image_size x image_size pixels (at least what --model needs; "
    "checked before any step runs).",
)
flags.DEFINE_integer(
    "batch_size",
    32,
    "Training batch size per replica; the global batch is this times the replicas "
    "(recorded in trainer/metadata.json).",
    lower_bound=1,
)
flags.DEFINE_integer(
    "epochs",
    EPOCHS,
    "Maximum training epochs; the model kept is the epoch of best validation AUC "
    "(benchmarks/shift.py compares configurations at 15).",
    lower_bound=1,
)
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_enum(
    "loss",
    DEFAULT_LOSS,
    list(LOSSES),
    "Training loss (models/losses.py); cross-entropy keeps scores calibrated (docs/benchmarks.md: "
    "Generalizing to a new acquisition).",
)
flags.DEFINE_float("focal_gamma", 2.0, "Focal loss gamma (focusing parameter).", lower_bound=0.0)
flags.DEFINE_float(
    "focal_alpha",
    0.5,
    "Focal loss alpha (positive-class weight).",
    lower_bound=0.0,
    upper_bound=1.0,
)
flags.DEFINE_boolean("class_weights", True, "Weight classes by inverse training frequency.")
flags.DEFINE_integer(
    "fine_tune_layers",
    0,
    "Transfer models: after training the head, unfreeze this many top backbone layers (0: one phase).",
    lower_bound=0,
)
flags.DEFINE_integer(
    "fine_tune_epochs",
    10,
    "Epochs of the second (fine-tuning) phase, at a tenth of the learning rate.",
    lower_bound=0,
)
flags.DEFINE_boolean(
    "tune",
    False,
    "Search CNN hyperparameters with keras-tuner on the validation split before training.",
)
flags.DEFINE_enum(
    "tuner",
    "random",
    ["random", "bayesian", "hyperband"],
    "keras-tuner search algorithm for --tune.",
)
flags.DEFINE_integer("max_trials", 10, "Trials for --tune (random and bayesian).", lower_bound=1)
flags.DEFINE_enum(
    "strategy",
    "default",
    ["default", "mirrored", "multi_worker"],
    "tf.distribute strategy: one device, all local GPUs, or the workers in TF_CONFIG.",
)
flags.DEFINE_integer(
    "cpu_replicas",
    1,
    "With --strategy mirrored on a machine without GPUs: split the CPU into this many "
    "logical devices, one replica each (tests the mirrored path; no speed-up).",
    lower_bound=1,
)
flags.DEFINE_enum(
    "precision",
    "auto",
    ["auto", "float32", "mixed_float16", "mixed_bfloat16"],
    "Compute precision: auto takes float32 on CPUs (bfloat16 cost development-site AUC: "
    "docs/benchmarks.md) and on GPUs mixed_bfloat16 from Ampere, mixed_float16 before.",
)
flags.DEFINE_enum(
    "normalization",
    DEFAULT_NORMALIZATION,
    list(NORMALIZATIONS),
    "CNN input: divide by 255, or standardize each image by its own mean and deviation "
    "(inside the model).",
)
flags.DEFINE_float(
    "acquisition_augmentation",
    DEFAULT_ACQUISITION,
    "Strength of the acquisition augmentation (gamma, brightness, blur, sharpening, pixel "
    "noise); 0 turns it off.",
    lower_bound=0.0,
)
flags.DEFINE_boolean(
    "horizontal_flip",
    False,
    "Augment with horizontal flips (a mirrored chest is not a real chest).",
)
flags.DEFINE_string(
    "adapt_to",
    None,
    "A folder of the deployment site's unlabelled images (any layout; every image file "
    "below it; class folder names, if any, are ignored: no label is read). After the "
    "normal training the model adapts to them by class-balanced self-training with "
    "confident pseudo-labels; the run reports it as adapted (trainer/metadata.json, model "
    "card).",
)
flags.DEFINE_integer(
    "adapt_epochs",
    ADAPT_EPOCHS,
    "--adapt_to: epochs of each self-training round (train + pseudo-labelled site images, "
    "a tenth of the learning rate; the epoch kept is chosen on validation as before).",
    lower_bound=1,
)
flags.DEFINE_float(
    "adapt_fraction",
    ADAPT_FRACTION,
    "--adapt_to: share of the site images predicted in each class that get that class as "
    "pseudo-label, most confident first (class-balanced: per predicted class).",
    lower_bound=0.01,
    upper_bound=1.0,
)
flags.DEFINE_integer(
    "adapt_rounds",
    ADAPT_ROUNDS,
    "--adapt_to: self-training rounds; round r of R pseudo-labels adapt_fraction * r / R, "
    "rescored by the model of the round before.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "seed", 42, "Seed for splits, shuffling, augmentation and initialization.", lower_bound=0
)
flags.DEFINE_string("run_dir", None, "Run folder (default: runs/pneumonia-<timestamp>).")
EXPLAIN_METHODS = tuple(METHODS)
flags.DEFINE_list(
    "explain",
    list(DEFAULT_METHODS),
    f"Explanation methods, comma-separated: {', '.join(EXPLAIN_METHODS)}.",
)
flags.register_validator(
    "explain",
    lambda methods: set(methods) <= set(EXPLAIN_METHODS),
    f"--explain takes a comma-separated subset of {', '.join(EXPLAIN_METHODS)}",
)
flags.DEFINE_boolean(
    "sanity_checks",
    False,
    "Explainer: cascading model-parameter randomization (Adebayo et al. 2018) for the gradient methods.",
)
flags.DEFINE_integer(
    "sanity_images",
    32,
    "--sanity_checks: seeded test images the randomization checks compare maps on.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "sanity_draws",
    3,
    "--sanity_checks: randomization draws (weights, permuted labels); the verdict is on "
    "the worst draw.",
    lower_bound=1,
)
flags.DEFINE_enum(
    "ig_baseline",
    DEFAULT_IG_BASELINE,
    list(BASELINES),
    "Integrated Gradients' reference input: a blurred copy of the image, black, or "
    "uniform noise (averaged over 4 draws). docs/benchmarks.md: the measured comparison "
    "(benchmarks/ig_baselines.py).",
)
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
    lower_bound=0.0,
    upper_bound=1.0,
)
flags.DEFINE_integer(
    "bootstrap", 1000, "Bootstrap resamples for 95% confidence intervals.", lower_bound=0
)
flags.DEFINE_boolean("force", False, "Rerun every component even if a completed one matches.")
flags.DEFINE_boolean("quiet", False, "Print only warnings, errors and the final summary.")


def resolve_data_source() -> tuple[str | None, str | None]:
    """The (data_dir, csv) the run reads: the flags as given; else the Kaggle folder at
    `DEFAULT_DATA_DIR` when it is there; else neither, which makes ExampleGen use the synthetic_cxr
    builder. Both flags at once are a DataError."""
    if FLAGS.data_dir and FLAGS.csv:
        raise DataError("give --data_dir or --csv, not both")
    if FLAGS.data_dir or FLAGS.csv:
        return FLAGS.data_dir, FLAGS.csv
    if (DEFAULT_DATA_DIR / "train").is_dir():
        print(f"Using the chest X-ray data found at {DEFAULT_DATA_DIR}", flush=True)
        return str(DEFAULT_DATA_DIR), None
    print(
        f"No --data_dir or --csv given and no data at {DEFAULT_DATA_DIR}: running on the "
        "synthetic_cxr builder (phantom radiographs with known lesion masks).",
        flush=True,
    )
    return None, None


def computed_flags() -> dict[str, Any]:
    """This entry point's flags that change what the run computes (not `PRESENTATION_FLAGS`): what
    the runner fingerprints and flags.txt and the HParams session record."""
    return {
        flag.name: flag.value
        for flag in FLAGS.get_flags_for_module(__name__)
        if flag.name not in PRESENTATION_FLAGS
    }


def progress_bars() -> bool:
    """Bars only for a person at a terminal, and not with --quiet."""
    return sys.stderr.isatty() and not FLAGS.quiet


def adapt_folder() -> dict[str, str]:
    """The Transform's `adapt_to` (absolute), only when given: runs without it keep their
    fingerprints."""
    return {"adapt_to": str(Path(FLAGS.adapt_to).resolve())} if FLAGS.adapt_to else {}


def adapt_settings() -> dict[str, Any]:
    """The Trainer's self-training settings, only with --adapt_to (without it they change
    nothing, so they must not rerun the Trainer)."""
    if not FLAGS.adapt_to:
        return {}
    return dict(
        adapt_epochs=FLAGS.adapt_epochs,
        adapt_fraction=FLAGS.adapt_fraction,
        adapt_rounds=FLAGS.adapt_rounds,
    )


def check_adapt_folder() -> None:
    """--adapt_to must be a folder with at least one image file below it (names and DICOM
    markers only; the Transform checks each image). Bad input otherwise, before any step."""
    if FLAGS.adapt_to is None:
        return
    if not FLAGS.adapt_to.strip():
        raise DataError("--adapt_to is empty: give the folder of the site's unlabelled images")
    from components.images import image_files_below

    folder = Path(FLAGS.adapt_to)
    if not folder.is_dir():
        raise DataError(f"--adapt_to {folder} is not a folder (the site's unlabelled images)")
    if not image_files_below(folder):
        raise DataError(
            f"--adapt_to {folder} has no image files (JPEG, PNG, BMP, GIF or DICOM) at any depth"
        )


def eda_component() -> Component:
    """EDA on examples.csv: counts, sizes and sample images, beside the Transform."""
    from components.pneumonia import eda

    return Component(
        "eda",
        eda.run,
        dict(seed=FLAGS.seed),
        display={"progress": progress_bars()},
        inputs={"examples": "example_gen"},
    )


def transform_component() -> Component:
    """The Transform: decoded, resized splits (and --adapt_to's images as `adapt`)."""
    from components.pneumonia import transform

    return Component(
        "transform",
        transform.run,
        dict(
            image_size=FLAGS.image_size,
            task=FLAGS.task,
            horizontal_flip=FLAGS.horizontal_flip,
            acquisition=FLAGS.acquisition_augmentation,
            **adapt_folder(),
        ),
        display={"progress": progress_bars()},
        inputs={"examples": "example_gen"},
        # The site's files (names, sizes, times), as ExampleGen's data: a changed
        # folder reruns the Transform, so the Trainer and all after it.
        cache_key=(
            {"adapt_fingerprint": data_fingerprint(FLAGS.adapt_to, None)} if FLAGS.adapt_to else {}
        ),
    )


def training_settings() -> dict[str, Any]:
    """What the Tuner's trials and the Trainer train with alike (the fingerprint sorts
    keys, so where they sit in a step's params does not matter)."""
    return dict(
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        focal_alpha=FLAGS.focal_alpha,
        loss=FLAGS.loss,
        use_class_weights=FLAGS.class_weights,
        normalization=FLAGS.normalization,
        precision=FLAGS.precision,
        seed=FLAGS.seed,
    )


def tuner_components() -> list[Component]:
    """The Tuner with --tune, else none: the Trainer then keeps the CNN's defaults."""
    from components.pneumonia import tuner

    if not FLAGS.tune:
        return []
    return [
        Component(
            "tuner",
            tuner.run,
            dict(kind=FLAGS.tuner, max_trials=FLAGS.max_trials, **training_settings()),
            inputs={"transform": "transform"},
        )
    ]


def trainer_component() -> Component:
    """The Trainer, which keeps its backups and log across a rerun so that it resumes."""
    from components.pneumonia import trainer

    return Component(
        "trainer",
        trainer.run,
        dict(
            model=FLAGS.model,
            weights=FLAGS.weights,
            learning_rate=FLAGS.learning_rate,
            focal_gamma=FLAGS.focal_gamma,
            fine_tune_layers=FLAGS.fine_tune_layers,
            fine_tune_epochs=FLAGS.fine_tune_epochs,
            strategy=FLAGS.strategy,
            **training_settings(),
            **adapt_settings(),
        ),
        # Keras' progress bar at a terminal, one line an epoch in a log, nothing if quiet.
        display={"verbose": 0 if FLAGS.quiet else (1 if sys.stderr.isatty() else 2)},
        inputs={"transform": "transform", **({"tuner": "tuner"} if FLAGS.tune else {})},
        keep_on_rerun=("backup", "adapt_backup", "history.csv", "model.keras"),
    )


def explainer_component() -> Component:
    """The Explainer on the Evaluator's test cases, with the --explain methods."""
    from components.pneumonia import explainer

    return Component(
        "explainer",
        explainer.run,
        dict(
            methods=tuple(FLAGS.explain),
            sanity_checks=FLAGS.sanity_checks,
            sanity_images=FLAGS.sanity_images,
            sanity_draws=FLAGS.sanity_draws,
            ig_baseline=FLAGS.ig_baseline,
            seed=FLAGS.seed,
        ),
        display={"progress": progress_bars()},
        inputs={
            "examples": "example_gen",
            "transform": "transform",
            "trainer": "trainer",
            "evaluator": "evaluator",
        },
    )


def build_components(data_dir: str | None, csv: str | None) -> list[Component]:
    """The pneumonia pipeline's steps from the flags, in the order they run."""
    return [
        example_gen_component(
            data_dir,
            csv,
            task=FLAGS.task,
            seed=FLAGS.seed,
            balance=FLAGS.balance,
            near_duplicates=FLAGS.near_duplicates,
            split_lists=FLAGS.split_lists,
            val_fraction=FLAGS.val_fraction,
            test_fraction=FLAGS.test_fraction,
            progress=progress_bars(),
        ),
        eda_component(),
        transform_component(),
        *tuner_components(),
        trainer_component(),
        evaluator_component(
            threshold_rule=FLAGS.threshold_rule,
            target_sensitivity=FLAGS.target_sensitivity,
            bootstrap=FLAGS.bootstrap,
            seed=FLAGS.seed,
            run_flags=computed_flags(),
        ),
        export_component(),
        explainer_component(),
    ]


def check_flag_combinations() -> None:
    """Combinations that cannot work stop before any step runs, with one line (single
    flags' bounds are absl's, checked as the flags are parsed)."""
    if FLAGS.image_size < min_image_size(FLAGS.model):
        raise DataError(
            f"--model {FLAGS.model} needs --image_size of at least "
            f"{min_image_size(FLAGS.model)}, got {FLAGS.image_size}"
        )
    if FLAGS.tune and FLAGS.model != "cnn":
        raise DataError(
            f"--tune searches the CNN's filters, depth, dropout and learning rate; "
            f"--model {FLAGS.model} has no such search space (use --model cnn, or drop --tune)"
        )
    if FLAGS.cpu_replicas > 1 and FLAGS.strategy != "mirrored":
        raise DataError(
            f"--cpu_replicas splits the CPU into replicas for --strategy mirrored; "
            f"--strategy {FLAGS.strategy} would ignore it"
        )
    if FLAGS.strategy == "multi_worker" and not FLAGS.run_dir:
        raise DataError(
            "--strategy multi_worker needs --run_dir: the same folder on every worker "
            "(the chief writes it, the others read the Transform's output from it)"
        )
    if FLAGS.task == "multilabel" and not FLAGS.csv:
        raise DataError(
            "--task multilabel reads the findings of an NIH-style CSV: give --csv "
            "(columns image_path,label with |-separated findings)"
        )
    if FLAGS.val_fraction + FLAGS.test_fraction > 0.8:
        raise DataError(
            f"--val_fraction {FLAGS.val_fraction} and --test_fraction {FLAGS.test_fraction} "
            "leave less than 20% of the patients to train on"
        )
    if FLAGS.split_lists and FLAGS.task != "multilabel":
        raise DataError("--split_lists (NIH's official split) is for --task multilabel")
    for flag in ("tune", "adapt_to"):
        if FLAGS.task == "multilabel" and FLAGS[flag].value:
            raise DataError(f"--{flag} is not available with --task multilabel")
    if FLAGS.fine_tune_layers > 0 and FLAGS.model in ("cnn", "cnn_lstm"):
        raise DataError(
            f"--fine_tune_layers unfreezes layers of a pretrained backbone; --model "
            f"{FLAGS.model} has none (use a transfer model such as densenet121)"
        )


def adaptation_summary(run_dir: Path) -> str:
    """A closing line when the model was adapted to a site's unlabelled images."""
    adaptation = read_json(run_dir / "trainer" / "metadata.json")["outputs"].get("adaptation")
    if not adaptation:
        return ""
    if not adaptation["adapted"]:
        return f"\n  not adapted to {adaptation['folder']}: stopped at {adaptation['stopped']}"
    pseudo = ", ".join(f"{name} {n}" for name, n in adaptation["pseudo_labels"].items())
    return (
        f"\n  adapted without labels to {adaptation['folder']} ({adaptation['images']} images, "
        f"fingerprint {adaptation['fingerprint']}); pseudo-labels {pseudo}; validation AUC "
        f"{adaptation['val_auc_before']:.3f} -> {adaptation['val_auc_after']:.3f}"
    )


def run_worker(data_dir: str | None, csv: str | None, run_dir: Path, step: str) -> int:
    """A worker that is not the chief runs one step with the chief (the Trainer under
    --strategy multi_worker, the Tuner as a keras-tuner worker), on the chief's Transform
    output in the shared run folder, writing only to a temporary folder it deletes at
    the end."""
    name = (
        distribution.tuner_worker_id() if step == "tuner" else "{} {}".format(*distribution.task())
    )
    scratch = Path(tempfile.mkdtemp(prefix=f"pneumonia-{name.replace(' ', '')}-"))
    extra = {"chief_backup": run_dir / "trainer" / "backup"} if step == "trainer" else {}
    try:
        outputs = run_as_worker(
            build_components(data_dir, csv), run_dir, step, scratch / step, extra, FLAGS.force
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if step == "trainer":
        done = (
            f"trained to epoch {outputs['epochs_run']} with the chief, global batch "
            f"{outputs['global_batch_size']}; final weights sha256 {outputs['weights_sha256']}"
        )
    else:
        done = "ran the trials the chief's oracle gave it"
    print(f"{name}: {done}; wrote only to {scratch}, now deleted (the chief writes {run_dir})")
    return 0


def main() -> int:
    """`python -m pipelines.pneumonia`: checks the flags, starts the tf.distribute strategy (before
    any TensorFlow op), runs the pipeline into the run folder, or only the Trainer or Tuner on a
    worker that is not the chief, then logs the HParams session, writes the model card (binary and
    multi-label tasks) and prints the summary. Returns the exit status."""
    check_flag_combinations()
    check_adapt_folder()
    # Next, before any TensorFlow op: multi_worker configures collective ops, which
    # TensorFlow allows only at program start.
    distribution.start(FLAGS.strategy, FLAGS.cpu_replicas)
    if FLAGS.quiet:
        logging.set_verbosity(logging.WARNING)
    run_dir = Path(FLAGS.run_dir or f"runs/pneumonia-{dt.datetime.now():%Y%m%d-%H%M%S}")
    # The first line a user sees: ours, before any step's log line.
    print(f"Pneumonia pipeline, run folder {run_dir}", flush=True)
    data_dir, csv = resolve_data_source()
    if FLAGS.tune and distribution.tuner_worker_id() is not None:
        return run_worker(data_dir, csv, run_dir, "tuner")
    if not distribution.is_chief():
        return run_worker(data_dir, csv, run_dir, "trainer")
    flag_values = computed_flags()
    cli.write_flagfile(run_dir, list(flag_values), "pipelines.pneumonia")
    log_to_run_folder(run_dir)
    run_pipeline(build_components(data_dir, csv), run_dir, flag_values, force=FLAGS.force)
    metrics = read_json(run_dir / "evaluator" / "metrics.json")
    cli.log_hparams(run_dir, flag_values, numeric_leaves(metrics, [(), ("val",), ("test",)]))
    closing = summary(run_dir) + adaptation_summary(run_dir)
    if FLAGS.task in ("binary", "multilabel"):
        closing += f"\nModel card: {write_model_card(run_dir)}"
    print(closing)
    return 0


if __name__ == "__main__":
    cli.run(main)
