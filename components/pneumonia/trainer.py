"""Trainer: fits a Keras model on the Transform's splits and saves trainer/model.keras.

Keras' own loss (models/losses.py), class weights from the training counts, and
callbacks for early stopping on validation AUC (restoring the best weights),
learning-rate decay, checkpointing, resuming a killed run (BackupAndRestore, plus
models/distributed_fit.ResumableState for the callbacks' own state), TensorBoard scalars
and histograms, and a CSV log that becomes history.png. They are driven by
models/distributed_fit.fit, one loop for every --strategy (Keras' model.fit fails under
MultiWorkerMirroredStrategy; the reason is there).

With `--adapt_to` (the Transform saved a deployment site's unlabelled images), a last
phase adapts the model to them by self-training on class-balanced confident
pseudo-labels (`self_train`; the rule in models/self_training.py), and the outputs
record it under `adaptation`.

Several workers (--strategy multi_worker): every worker trains; only the chief writes
into the run folder. The others write to a temporary folder of their own, which they
delete at the end, as TensorFlow's multi-worker guide prescribes, and start from a copy
of the chief's backup, so a resumed run resumes alike on every worker.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from absl import logging

from components import distribution
from components.artifacts import atomic_path, read_json, write_csv
from components.atomic_callbacks import AtomicCSVLogger, AtomicModelCheckpoint
from components.reporting.figures import save_figure
from components.saved_splits import (
    ADAPT_SPLIT,
    class_balanced_sample,
    input_fn,
    load_spec,
    pseudo_labelled_input_fn,
    split_rows,
)
from models import build_model, distributed_fit
from models.cnn import DEFAULT_NORMALIZATION, tuned_settings
from models.distributed_fit import ResumableState
from models.losses import DEFAULT_LOSS
from models.self_training import (
    ADAPT_EPOCHS,
    ADAPT_FRACTION,
    ADAPT_ROUNDS,
    NO_PSEUDO_LABEL,
    RULE,
    class_balanced_pseudo_labels,
    class_probabilities,
    counts_by_class,
    predicted_class,
    predicted_scores,
    round_fractions,
)
from models.training import (
    MultilabelHead,
    class_weights,
    compile_for_training,
    compute_precision,
    finding_weights,
    precision_policy,
)
from models.transfer import fine_tune_layers as unfreeze_top

HISTORY_METRICS = ("loss", "accuracy", "auc", "precision", "recall")
# Maximum epochs (--epochs); the model kept is the epoch of best validation AUC.
EPOCHS = 15
EPOCH_HEATMAPS_PER_CLASS = 4
ADAPT_METHOD = (
    "class-balanced self-training with confident pseudo-labels "
    "(Lee 2013 Pseudo-Label; Zou et al. 2018 CBST)"
)
# A tenth of the learning rate, as fine-tuning: adjust what was learnt, not relearn it
# from labels that are the model's own guesses.
ADAPT_LEARNING_RATE_FACTOR = 0.1


def training_callbacks(
    out_dir: Path,
    tensorboard_dir: Path | None,
    patience: int,
    backup: Path | None = None,
) -> list[keras.callbacks.Callback]:
    """Early stopping, LR decay, checkpoint, CSV log, TensorBoard, then the backup (in
    `backup`, default out_dir/backup).

    The backup comes last, so that what it saves after an epoch includes that epoch's
    learning-rate decay and the other callbacks' updated state.
    """
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(
            monitor="val_auc", mode="max", patience=patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=max(2, patience // 3), min_lr=1e-6
        ),
        # Both write under a temporary name and rename: a kill mid-save keeps the old file.
        AtomicModelCheckpoint(
            os.fspath(out_dir / "model.keras"), monitor="val_auc", mode="max", save_best_only=True
        ),
        AtomicCSVLogger(out_dir / "history.csv", append=True),
    ]
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(os.fspath(tensorboard_dir), histogram_freq=1))
    backup = backup or out_dir / "backup"
    return [
        *callbacks,
        ResumableState(backup, callbacks),
        # double_checkpoint: a kill while the backup is written leaves the previous one.
        keras.callbacks.BackupAndRestore(os.fspath(backup), double_checkpoint=True),
    ]


def plot_history(history_csv: Path, png_path: Path, tensorboard_dir: Path | None) -> None:
    """history.png (and its TensorBoard image): train and validation curves of `HISTORY_METRICS` per
    epoch from history.csv; an epoch logged twice (a resumed run) counts once, its last row."""
    import matplotlib.pyplot as plt

    history = pd.read_csv(history_csv).drop_duplicates("epoch", keep="last")
    fig, axes = plt.subplots(1, len(HISTORY_METRICS), figsize=(4 * len(HISTORY_METRICS), 3.2))
    for ax, name in zip(axes, HISTORY_METRICS):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + name in history:
                ax.plot(
                    history["epoch"] + 1,
                    history[prefix + name],
                    style,
                    label="validation" if prefix else "train",
                )
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    save_figure(fig, png_path, tensorboard_dir, "history")


def epoch_heatmap_callbacks(
    net: keras.Model, transform: Path, tensorboard_dir: Path, seed: int
) -> list[keras.callbacks.Callback]:
    """tf-explain's Grad-CAM and IG on 8 fixed validation images (4 a class, seeded) after
    every epoch, so attention is seen forming on pneumonia as well as on normals.

    Binary models with a flat conv stack only: tf-explain's Grad-CAM cannot reach inside a
    nested backbone, and it explains one fixed class index.
    """
    from components.explain.gradcam import last_conv_layer
    from components.explain.training_heatmaps import heatmap_callbacks

    if net.outputs[0].shape[-1] != 1 or isinstance(last_conv_layer(net), keras.Model):
        logging.info("trainer: no per-epoch tf-explain heatmaps for %s", net.name)
        return []
    images, labels = class_balanced_sample(transform, "val", EPOCH_HEATMAPS_PER_CLASS, seed)
    return heatmap_callbacks(images, labels, tensorboard_dir)


def weights_by_path(net: keras.Model) -> dict[str, np.ndarray]:
    """Every weight by its unique path: unfreezing layers reorders get_weights(), not paths."""
    return {w.path: np.asarray(w) for w in net.weights}


def keep_better_phase(
    net: keras.Model,
    phase_one_weights: dict[str, np.ndarray],
    phase_one_best_auc: float,
    phase_two_aucs: Sequence[float],
) -> bool:
    """Back to phase one's best weights unless fine-tuning beat its validation AUC.

    EarlyStopping restored phase two's best epoch, which can be worse than phase one's
    (fine-tuning a backbone on little data often is). True when phase one's are kept.
    """
    if phase_two_aucs and float(np.nanmax(phase_two_aucs)) > phase_one_best_auc:
        return False
    for weight in net.weights:
        weight.assign(phase_one_weights[weight.path])
    logging.info("trainer: fine-tuning did not beat phase one's validation AUC; kept phase one")
    return True


def tuned_hyperparameters(tuner_dir: Path) -> dict[str, Any]:
    """The Tuner's best settings, through the CNN's own search space (models/cnn.py)."""
    best = tuned_settings(read_json(tuner_dir / "best_hyperparameters.json"))
    logging.info("trainer: tuned hyperparameters %s", best)
    return best


@dataclasses.dataclass(frozen=True)
class Phase:
    """One training phase, as history.csv has it (epochs before a resume included)."""

    val_auc: list[float]
    epochs_run: int
    best_epoch: int | None


def fit_phase(
    net: keras.Model,
    train: tf.data.Dataset,
    val: tf.data.Dataset,
    initial_epoch: int,
    epochs: int,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    *,
    strategy: tf.distribute.Strategy,
    class_weight: dict[int, float] | None,
    out_dir: Path,
    tensorboard_dir: Path | None,
    patience: int,
    verbose: int,
    backup: Path | None = None,
) -> Phase:
    """Epochs `initial_epoch` up to `epochs` (fewer if stopped early, later if resumed).

    `backup`: where this phase keeps its resume state (default out_dir/backup). Keras
    deletes a phase's backup when the phase ends, so a phase that resumes from its own
    folder never mistakes another phase's state for its own.
    """
    callbacks = [
        *training_callbacks(out_dir, tensorboard_dir, patience, backup),
        *extra_callbacks,
    ]
    history = distributed_fit.fit(
        net,
        train,
        val,
        epochs=epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        strategy=strategy,
        class_weight=class_weight,
        verbose=verbose,
    )
    logged = pd.read_csv(out_dir / "history.csv").drop_duplicates("epoch", keep="last")
    end = max(history.epoch, default=initial_epoch - 1) + 1
    phase = logged[(logged["epoch"] >= initial_epoch) & (logged["epoch"] < end)]
    stopper = next(c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping))
    best_epoch = stopper.best_epoch if stopper.best_weights is not None else None
    return Phase(list(phase.get("val_auc", [])), end, best_epoch)


@dataclasses.dataclass(frozen=True)
class SelfTraining:
    """--adapt_to's settings: `rounds` of `epochs` each, pseudo-labelling up to `fraction`
    of each predicted class (models/self_training.py: RULE)."""

    epochs: int
    fraction: float
    rounds: int


def pseudo_label_round(
    net: keras.Model, transform: Path, fraction: float, batch_size: int
) -> tuple[np.ndarray, pd.DataFrame]:
    """Scores the adapt split with `net` and applies the rule: (a pseudo-label for every
    row of adapt.csv, NO_PSEUDO_LABEL for images left out or undecodable; a table of the
    images with their predicted class, confidence and pseudo-label)."""
    class_names = load_spec(transform)["class_names"]
    rows = split_rows(transform, ADAPT_SPLIT)
    probabilities = class_probabilities(
        predicted_scores(net, input_fn(transform, ADAPT_SPLIT, batch_size))
    )
    chosen = class_balanced_pseudo_labels(probabilities, fraction)
    predicted = predicted_class(probabilities)
    paths = pd.read_csv(transform / "adapt.csv")["path"]
    by_row = np.full(len(paths), NO_PSEUDO_LABEL, dtype=np.int64)
    by_row[rows] = chosen
    table = pd.DataFrame(
        {
            "path": paths.iloc[rows].to_numpy(),
            "predicted": [class_names[c] for c in predicted],
            "confidence": probabilities[np.arange(len(predicted)), predicted].round(6),
            "pseudo_label": [class_names[c] if c != NO_PSEUDO_LABEL else "" for c in chosen],
        }
    )
    return by_row, table


def round_record(
    number: int,
    fraction: float,
    table: pd.DataFrame,
    class_names: list[str],
    phase: Phase | None,
) -> dict[str, Any]:
    """What one self-training round did, for trainer/metadata.json (`phase` None: the
    round chose its pseudo-labels but did not train)."""
    chosen = table[table["pseudo_label"] != ""]
    return {
        "round": number,
        "fraction": fraction,
        "trained": phase is not None,
        "predicted": {c: int((table["predicted"] == c).sum()) for c in class_names},
        "pseudo_labels": {c: int((chosen["pseudo_label"] == c).sum()) for c in class_names},
        # The confidence the least confident chosen image of each class had: the
        # per-class threshold the rule amounted to.
        "min_confidence": {
            c: float(chosen.loc[chosen["pseudo_label"] == c, "confidence"].min())
            for c in class_names
            if (chosen["pseudo_label"] == c).any()
        },
        "best_val_auc": (
            float(np.nanmax(phase.val_auc)) if phase and phase.val_auc else float("nan")
        ),
    }


def self_train(
    net: keras.Model,
    transform: Path,
    settings: SelfTraining,
    train_round: Callable[[tf.data.Dataset, dict[int, float] | None, int, Path], Phase],
    *,
    first_epoch: int,
    batch_size: int,
    seed: int,
    one_hot: bool,
    drop_remainder: bool,
    use_class_weights: bool,
    out_dir: Path,
) -> tuple[Phase | None, dict[str, Any]]:
    """Adapts `net` to the adapt split without its labels (there are none): every round
    scores the site's images, pseudo-labels the confident ones (models/self_training.py)
    and trains `settings.epochs` more on train + them, validation unchanged. Returns the
    last round trained (None: none was) and the record for trainer/metadata.json; writes
    pseudo_labels.csv (every round's choices).

    A round in which some class gets no pseudo-label stops the adaptation: pseudo-labels
    of one class can only teach that the whole site is that class (a shift that moves
    every site image to one side of 0.5 does that), so the model stays as it was.
    """
    spec = load_spec(transform)
    class_names = spec["class_names"]
    start, rounds, tables = first_epoch, [], []
    phase, stopped = None, None
    for number, fraction in enumerate(round_fractions(settings.fraction, settings.rounds), 1):
        by_row, table = pseudo_label_round(net, transform, fraction, batch_size)
        tables.append(table.assign(round=number))
        pseudo = counts_by_class(by_row, class_names)
        logging.info("trainer: self-training round %d, pseudo-labels %s", number, pseudo)
        missing = [name for name, n in pseudo.items() if n == 0]
        if missing:
            stopped = (
                f"round {number}: no site image predicted {' or '.join(missing)}, so the "
                "pseudo-labels would teach that the site has none; not trained"
            )
            logging.warning("trainer: adaptation stopped at %s", stopped)
            rounds.append(round_record(number, fraction, table, class_names, None))
            break
        counts = np.add(spec["train_class_counts"], list(pseudo.values())).tolist()
        ds = pseudo_labelled_input_fn(
            transform,
            by_row,
            batch_size,
            seed=seed + number,
            one_hot=one_hot,
            drop_remainder=drop_remainder,
        )
        backup = out_dir / "adapt_backup" / f"round-{number}"
        phase = train_round(ds, class_weights(counts) if use_class_weights else None, start, backup)
        start = phase.epochs_run
        rounds.append(round_record(number, fraction, table, class_names, phase))
    write_csv(out_dir / "pseudo_labels.csv", pd.concat(tables, ignore_index=True))
    site = spec["adaptation"]
    trained = [r for r in rounds if r["trained"]]
    return phase, {
        "adapted": bool(trained),
        "method": ADAPT_METHOD,
        "folder": site["folder"],
        "images": site["images"],
        "fingerprint": site["fingerprint"],
        "labels_read": False,
        "rule": RULE,
        "fraction": settings.fraction,
        "rounds": settings.rounds,
        "epochs_per_round": settings.epochs,
        "learning_rate_factor": ADAPT_LEARNING_RATE_FACTOR,
        "pseudo_labels": (trained or rounds)[-1]["pseudo_labels"],
        "round_details": rounds,
        "stopped": stopped,
    }


def use_op_determinism() -> bool:
    """Deterministic kernels where they cost little: on CPUs, the same flags and seed give
    the same model. On GPUs TensorFlow's determinism makes some ops raise ("no
    deterministic GPU implementation") and others much slower, so it stays off there:
    GPU runs are reproducible up to the order of floating-point sums."""
    if tf.config.list_physical_devices("GPU"):
        logging.info("trainer: GPU present; op determinism off (docs/usage.md, reproducibility)")
        return False
    tf.config.experimental.enable_op_determinism()
    return True


def best_auc(val_auc: Sequence[float]) -> float:
    """A phase's best validation AUC (NaN when no epoch logged one)."""
    return float(np.nanmax(val_auc)) if val_auc else float("nan")


def model_settings(
    model: str, normalization: str, tuner: Path | None, learning_rate: float, focal_gamma: float
) -> tuple[dict[str, Any], float, float]:
    """The builder's keyword arguments, learning rate and focal gamma: the flags', or with
    a Tuner upstream its best hyperparameters."""
    architecture: dict[str, Any] = {"normalization": normalization} if model == "cnn" else {}
    if tuner is not None:
        best = tuned_hyperparameters(tuner)
        architecture.update(filters=best["filters"], dropout=best["dropout"])
        learning_rate, focal_gamma = best["learning_rate"], best["focal_gamma"]
    return architecture, learning_rate, focal_gamma


def start_strategy(strategy: str, batch_size: int) -> tf.distribute.Strategy:
    """The --strategy's tf.distribute strategy, logged with the global batch it implies."""
    distribute = distribution.strategy(strategy)
    replicas = distribute.num_replicas_in_sync
    logging.info(
        "trainer: --strategy %s, %d replicas, global batch %d (%d per replica)",
        strategy,
        replicas,
        batch_size * replicas,
        batch_size,
    )
    return distribute


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How every phase compiles the model, the learning rate aside."""

    num_classes: int
    loss: str
    focal_gamma: float
    focal_alpha: float
    # A multi-label head (one sigmoid per finding) and what its loss and AUC weigh.
    multilabel: MultilabelHead | None = None

    def compile(self, net: keras.Model, learning_rate: float) -> None:
        """Compiles `net` afresh (a new optimizer) at `learning_rate`."""
        compile_for_training(
            net,
            self.num_classes,
            learning_rate,
            self.loss,
            self.focal_gamma,
            self.focal_alpha,
            self.multilabel,
        )


def build_net(
    model: str,
    image_size: int,
    weights: str,
    architecture: dict[str, Any],
    recipe: Recipe,
    learning_rate: float,
    distribute: tf.distribute.Strategy,
    policy: str,
) -> keras.Model:
    """The compiled model, its variables made under the strategy and precision policy."""
    # Under a mixed policy the models keep their outputs (and input statistics) in float32.
    with distribute.scope(), compute_precision(policy):
        net = build_model(
            model,
            image_size,
            recipe.num_classes,
            weights=weights,
            **architecture,
            **({"multilabel": True} if recipe.multilabel else {}),  # one sigmoid per finding
        )
        recipe.compile(net, learning_rate)
    if distribute.num_replicas_in_sync > 1:
        distributed_fit.synchronize_batch_norm(net)
    return net


def resume_like_chief(
    distribute: tf.distribute.Strategy, chief_backup: Path | None, out_dir: Path
) -> None:
    """Waits for every worker, then (a non-chief worker) copies the chief's backups, so a
    resumed run resumes alike everywhere."""
    # Past this point every worker has made its variables, so the chief's folder is past
    # the runner's clean-up, and the chief cannot write a new backup before the others
    # have copied the one it resumes from (training a step needs every worker).
    distribution.barrier(distribute)
    if chief_backup is not None and chief_backup.is_dir():
        shutil.copytree(chief_backup, out_dir / "backup", dirs_exist_ok=True)
    # The self-training rounds' backups sit beside it; a worker resumes those alike.
    if chief_backup is not None and (chief_backup.parent / "adapt_backup").is_dir():
        shutil.copytree(
            chief_backup.parent / "adapt_backup", out_dir / "adapt_backup", dirs_exist_ok=True
        )


def training_data(
    transform: Path, global_batch: int, seed: int, one_hot: bool, drop_remainder: bool
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The train split (shuffled, augmented, seeded) and the val split, in global batches."""
    train = input_fn(
        transform,
        "train",
        global_batch,
        training=True,
        seed=seed,
        one_hot=one_hot,
        drop_remainder=drop_remainder,
    )
    return train, input_fn(transform, "val", global_batch, one_hot=one_hot)


@dataclasses.dataclass(frozen=True)
class Fitting:
    """What every phase of one training shares: the model, its strategy and precision
    policy, its recipe, the validation data and fit_phase's callback settings."""

    net: keras.Model
    strategy: tf.distribute.Strategy
    policy: str
    recipe: Recipe
    val: tf.data.Dataset
    out_dir: Path
    tensorboard_dir: Path | None
    patience: int
    verbose: int

    def fit(
        self,
        train: tf.data.Dataset,
        initial_epoch: int,
        epochs: int,
        extra_callbacks: Sequence[keras.callbacks.Callback] = (),
        *,
        class_weight: dict[int, float] | None,
        backup: Path | None = None,
    ) -> Phase:
        """fit_phase on `train` with this training's model, validation data and settings."""
        return fit_phase(
            self.net,
            train,
            self.val,
            initial_epoch,
            epochs,
            extra_callbacks,
            strategy=self.strategy,
            class_weight=class_weight,
            out_dir=self.out_dir,
            tensorboard_dir=self.tensorboard_dir,
            patience=self.patience,
            verbose=self.verbose,
            backup=backup,
        )


def fine_tune(
    fitting: Fitting,
    train: tf.data.Dataset,
    first: Phase,
    layers: int,
    epochs: int,
    learning_rate: float,
    class_weight: dict[int, float] | None,
) -> Phase:
    """Phase two: the top `layers` backbone layers unfrozen, `epochs` more at
    `learning_rate`; back to phase one's weights unless fine-tuning beat its validation
    AUC. Returns both phases as one."""
    net = fitting.net
    # Phase two starts with fresh callbacks: remember phase one's best (restored) state.
    phase_one = (
        weights_by_path(net),
        float(np.nanmax(first.val_auc)) if first.val_auc else -np.inf,
    )
    with fitting.strategy.scope():
        unfreeze_top(net, layers)
        fitting.recipe.compile(net, learning_rate)
    more = fitting.fit(
        train, first.epochs_run, first.epochs_run + epochs, class_weight=class_weight
    )
    best_epoch = first.best_epoch
    if not keep_better_phase(net, *phase_one, more.val_auc):
        best_epoch = more.best_epoch
    return Phase(first.val_auc + more.val_auc, more.epochs_run, best_epoch)


def adapt_to_site(
    fitting: Fitting,
    transform: Path,
    settings: SelfTraining,
    before: Phase,
    learning_rate: float,
    *,
    batch_size: int,
    seed: int,
    one_hot: bool,
    drop_remainder: bool,
    use_class_weights: bool,
) -> tuple[Phase, dict[str, Any]]:
    """Self-training on the adapt split at `learning_rate` (`self_train`). Returns the
    phase whose best epoch is kept (the last round trained, else `before`) and the
    `adaptation` record, with validation AUC before and after."""

    def train_round(
        ds: tf.data.Dataset, weights: dict[int, float] | None, start: int, backup: Path
    ) -> Phase:
        # A fresh optimizer at a tenth of the rate each round, under the run's policy.
        with fitting.strategy.scope(), compute_precision(fitting.policy):
            fitting.recipe.compile(fitting.net, learning_rate)
        return fitting.fit(ds, start, start + settings.epochs, class_weight=weights, backup=backup)

    last, adaptation = self_train(
        fitting.net,
        transform,
        settings,
        train_round,
        first_epoch=before.epochs_run,
        batch_size=batch_size,
        seed=seed,
        one_hot=one_hot,
        drop_remainder=drop_remainder,
        use_class_weights=use_class_weights,
        out_dir=fitting.out_dir,
    )
    # The model kept is the last round's best epoch on (unchanged) validation.
    after = before if last is None else last
    adaptation["val_auc_before"] = best_auc(before.val_auc)
    adaptation["val_auc_after"] = best_auc(after.val_auc)
    return after, adaptation


def save_model(net: keras.Model, out_dir: Path, tensorboard_dir: Path | None) -> None:
    """model.keras (the best epoch's weights, restored by EarlyStopping) and history.png."""
    # Saved whole, atomically: a kill mid-save keeps no half-written file.
    with atomic_path(out_dir / "model.keras") as tmp:
        net.save(tmp)
    plot_history(out_dir / "history.csv", out_dir / "history.png", tensorboard_dir)


def multilabel_head(spec: dict[str, Any], use_class_weights: bool) -> MultilabelHead | None:
    """A multi-label Transform's head settings (None for the other tasks): each finding's
    positives and negatives weighted alike in the loss (models/training.finding_weights)
    with `use_class_weights`, and the validation AUC early stopping watches averaged over
    the findings that have both positives and negatives on val."""
    if spec["task"] != "multilabel":
        return None
    weights = (
        finding_weights(spec["train_class_counts"], spec["train_images"])
        if use_class_weights
        else None
    )
    val_images = spec["counts"].get("val", 0)
    measurable = [float(0 < n < val_images) for n in spec.get("val_class_counts", [])]
    logging.info("trainer: one sigmoid per finding %s, weights %s", spec["class_names"], weights)
    return MultilabelHead(weights, measurable if any(measurable) else None)


def run(
    out_dir: Path,
    *,
    transform: Path,
    tuner: Path | None = None,
    model: str = "cnn",
    weights: str = "none",
    epochs: int = EPOCHS,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    loss: str = DEFAULT_LOSS,
    focal_gamma: float = 2.0,
    focal_alpha: float = 0.5,
    use_class_weights: bool = True,
    patience: int = 10,
    fine_tune_layers: int = 0,
    fine_tune_epochs: int = 10,
    strategy: str = "default",
    chief_backup: Path | None = None,
    precision: str = "auto",
    epoch_heatmaps: bool = True,
    normalization: str = DEFAULT_NORMALIZATION,
    adapt_epochs: int = ADAPT_EPOCHS,
    adapt_fraction: float = ADAPT_FRACTION,
    adapt_rounds: int = ADAPT_ROUNDS,
    seed: int = 42,
    verbose: int = 2,
    tensorboard_dir: Path | None = None,
) -> dict[str, Any]:
    """The Trainer component: writes model.keras, history.csv and history.png.

    With a Tuner upstream, its best hyperparameters replace the CNN's defaults. With
    `fine_tune_layers` N > 0 (transfer backbones), a second phase unfreezes the top N
    backbone layers and trains `fine_tune_epochs` more at a tenth of the learning rate.
    When the Transform saved a deployment site's unlabelled images (`--adapt_to`), the
    model is then adapted to them by self-training (`self_train`): `adapt_rounds` rounds
    of `adapt_epochs` epochs at a tenth of the learning rate (0 epochs: no adaptation),
    pseudo-labelling up to `adapt_fraction` of each predicted class; pseudo_labels.csv
    lists the choices.

    `batch_size` is per replica; the global batch is that times the replicas. A non-chief
    worker is given its own temporary `out_dir` and the chief's `chief_backup` folder.
    """
    keras.utils.set_random_seed(seed)
    deterministic = use_op_determinism()
    policy = precision_policy(precision)
    logging.info("trainer: compute precision %s (--precision %s)", policy, precision)
    spec = load_spec(transform)
    architecture, learning_rate, focal_gamma = model_settings(
        model, normalization, tuner, learning_rate, focal_gamma
    )
    recipe = Recipe(
        len(spec["class_names"]),
        loss,
        focal_gamma,
        focal_alpha,
        multilabel_head(spec, use_class_weights),
    )
    distribute = start_strategy(strategy, batch_size)
    replicas = distribute.num_replicas_in_sync
    global_batch = batch_size * replicas
    net = build_net(
        model, spec["image_size"], weights, architecture, recipe, learning_rate, distribute, policy
    )
    resume_like_chief(distribute, chief_backup, out_dir)
    one_hot = recipe.num_classes > 2 and recipe.multilabel is None
    drop_remainder = replicas > 1
    train, val = training_data(transform, global_batch, seed, one_hot, drop_remainder)
    # A multi-label head weighs each finding in its loss (Recipe.multilabel), not images.
    weights_by_class = (
        class_weights(spec["train_class_counts"])
        if use_class_weights and recipe.multilabel is None
        else None
    )
    logging.info(
        "trainer: %s, %d parameters, class weights %s", model, net.count_params(), weights_by_class
    )
    fitting = Fitting(
        net, distribute, policy, recipe, val, out_dir, tensorboard_dir, patience, verbose
    )
    heatmaps = (
        epoch_heatmap_callbacks(net, transform, tensorboard_dir, seed)
        if tensorboard_dir is not None and epoch_heatmaps
        else []
    )
    phase = fitting.fit(train, 0, epochs, heatmaps, class_weight=weights_by_class)
    if fine_tune_layers > 0:
        phase = fine_tune(
            fitting,
            train,
            phase,
            fine_tune_layers,
            fine_tune_epochs,
            learning_rate / 10,
            weights_by_class,
        )
    adaptation: dict[str, Any] | None = None
    if ADAPT_SPLIT in spec["counts"] and adapt_epochs > 0:
        phase, adaptation = adapt_to_site(
            fitting,
            transform,
            SelfTraining(adapt_epochs, adapt_fraction, adapt_rounds),
            phase,
            learning_rate * ADAPT_LEARNING_RATE_FACTOR,
            batch_size=global_batch,
            seed=seed,
            one_hot=one_hot,
            drop_remainder=drop_remainder,
            use_class_weights=use_class_weights,
        )
    save_model(net, out_dir, tensorboard_dir)
    return {
        "model": "model.keras",
        "epochs_run": phase.epochs_run,
        "best_epoch": phase.best_epoch,
        "best_val_auc": best_auc(phase.val_auc),
        "parameters": int(net.count_params()),
        "precision": policy,
        "op_determinism": deterministic,
        "strategy": strategy,
        "replicas": replicas,
        "batch_size_per_replica": batch_size,
        "global_batch_size": global_batch,
        "weights_sha256": distributed_fit.weights_digest(net),
        "adaptation": adaptation,
    }
