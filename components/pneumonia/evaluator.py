"""Evaluator: predictions on val and test, a threshold chosen on val only, metrics, plots.

Writes evaluator/metrics.json (keys in docs/ARCHITECTURE.md), predictions.csv (path,label,score,split),
and ROC / confusion-matrix PNGs that also go to TensorBoard; with a TensorBoard folder, the
test images' features, thumbnails and metadata for its Projector. For pipelines.evaluate
also shift.json (the test images against the training run's validation split,
components/shift.py) and, with a site's calibration images, site.json.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from sklearn import metrics as skm

from components.artifacts import file_sha256, read_json, write_csv, write_json
from components.clinical_metrics import (
    balanced_accuracy,
    binary_metrics,
    patient_draw_weights,
    slice_metrics,
    youden_threshold,
)
from components.errors import DataError
from components.multilabel_metrics import choose_finding_thresholds, multilabel_split_metrics
from components.reporting.evaluation_plots import (
    plot_class_balance,
    plot_confusion,
    plot_finding_rocs,
    plot_gallery,
    plot_precision_recall,
    plot_reliability,
    plot_roc,
    plot_score_histograms,
    plot_shift,
)
from components.reporting.evaluation_report import write_evaluation_report
from components.reporting.multilabel_report import write_multilabel_report
from components.reporting.projector import feature_model, write_projector
from components.saved_splits import input_fn, load_spec, split_examples, split_images, split_labels
from components.shift import ImageSet, shift_report
from components.trained_model import load_trained_model
from datasets.chest_xray_pneumonia.file_names import acquisition_batch

EVAL_SPLITS = ("val", "test")


def predict_split(
    model: keras.Model, transform_dir: Path, split: str, batch_size: int = 64
) -> np.ndarray:
    """Class scores for a saved split, in saved order: (n,) for binary, (n, k) otherwise."""
    scores = model.predict(input_fn(transform_dir, split, batch_size), verbose=0)
    return scores[:, 0] if scores.shape[-1] == 1 else scores


def choose_threshold(
    y_val: np.ndarray, val_scores: np.ndarray, rule: str, target_sensitivity: float
) -> float:
    """A decision threshold from validation predictions only; test never moves it."""
    if rule == "youden":
        return youden_threshold(y_val, val_scores)
    if rule == "target_sensitivity":
        positives = np.sort(val_scores[y_val == 1])
        if not len(positives):
            return 0.5
        # The highest cut that still flags `target_sensitivity` of validation positives.
        index = int(np.floor((1.0 - target_sensitivity) * len(positives)))
        return float(positives[min(index, len(positives) - 1)])
    raise ValueError(f"unknown threshold rule {rule!r} (youden or target_sensitivity)")


def multiclass_metrics(
    y_true: np.ndarray, scores: np.ndarray, class_names: list[str]
) -> dict[str, Any]:
    """A three-class model's figures on one split: accuracy, balanced accuracy, one-vs-rest AUC
    (macro and micro; NaN when a class is missing from the split), macro F1, the confusion matrix
    and scikit-learn's per-class report. `scores` is (n, classes), the prediction its argmax."""
    y_pred = scores.argmax(axis=1)
    labels = list(range(len(class_names)))
    present = len(np.unique(y_true)) == len(class_names)
    onehot = np.eye(len(class_names))[y_true]
    return {
        "n": int(len(y_true)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred, labels),
        "auc_macro": float(
            skm.roc_auc_score(y_true, scores, multi_class="ovr", average="macro", labels=labels)
        )
        if present
        else float("nan"),
        "auc_micro": float(skm.roc_auc_score(onehot, scores, average="micro"))
        if present
        else float("nan"),
        "f1_macro": float(skm.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "per_class": skm.classification_report(
            y_true,
            y_pred,
            labels=labels,
            target_names=class_names,
            output_dict=True,
            zero_division=0,
        ),
    }


def image_source(path: str) -> str:
    """Which folder of a Kaggle layout an image came from (held out of train, or official)."""
    folder = Path(path).parent.parent.name.lower()
    sources = {"train": "held_out_from_train", "val": "official_val", "test": "official_test"}
    return sources.get(folder, "other")


def slice_columns(predictions: pd.DataFrame) -> dict[str, np.ndarray]:
    """What the Evaluator slices by: acquisition batch (file-name prefix), pathogen, source."""
    names = predictions["path"].map(lambda p: Path(p).name)
    return {
        "batch": names.map(acquisition_batch).to_numpy(),
        "pathogen": predictions["pathogen"].astype(str).to_numpy(),
        "source": predictions["path"].map(image_source).to_numpy(),
    }


def draw_galleries(
    frame: pd.DataFrame,
    images: dict[str, np.ndarray],
    threshold: float,
    class_names: list[str],
    seed: int,
    out_dir: Path,
    tensorboard_dir: Path | None,
    size: int = 12,
) -> None:
    """Random validation images with true/predicted labels; test false positives/negatives."""
    rng = np.random.default_rng(seed)
    val = frame[frame["split"] == "val"]
    pick = np.sort(rng.choice(len(val), size=min(size, len(val)), replace=False))
    if len(pick):  # external validation has no val split
        plot_gallery(
            images["val"][pick],
            [
                f"true {val['label'].iat[i]}\n"
                f"pred {class_names[int(val['score'].iat[i] >= threshold)]}"
                f" ({val['score'].iat[i]:.2f})"
                for i in pick
            ],
            "random validation images",
            "gallery_val_random.png",
            out_dir,
            tensorboard_dir,
        )
    test = frame[frame["split"] == "test"].reset_index(drop=True)
    positive = (test["label"] != class_names[0]).to_numpy()
    flagged = (test["score"] >= threshold).to_numpy()
    for name, mask, order in (
        ("false_positives", ~positive & flagged, -1),
        ("false_negatives", positive & ~flagged, 1),
    ):
        chosen = test.index[mask].to_numpy()
        chosen = chosen[np.argsort(order * test.loc[chosen, "score"].to_numpy(), kind="stable")][
            :size
        ]
        plot_gallery(
            images["test"][chosen],
            [
                f"{Path(test.at[i, 'path']).name[:22]}\nscore {test.at[i, 'score']:.2f}"
                for i in chosen
            ],
            f"test {name.replace('_', ' ')} ({int(mask.sum())}), most confident first",
            f"gallery_{name}.png",
            out_dir,
            tensorboard_dir,
        )


def projector_metadata(test: pd.DataFrame, class_names: list[str], threshold: float | None):
    """One row per test image for the Projector: what to colour and search points by."""
    scores = test.filter(like="score").to_numpy()
    if threshold is None:
        predicted = [class_names[i] for i in scores.argmax(axis=1)]
        score = scores.max(axis=1)
    else:
        score = scores[:, 0]
        predicted = [class_names[int(s >= threshold)] for s in score]
    return pd.DataFrame(
        {
            "label": test["label"].to_numpy(),
            "score": np.round(score, 4),
            "predicted": predicted,
            "correct": test["label"].to_numpy() == np.asarray(predicted),
            "pathogen": test["pathogen"].to_numpy(),
            "batch": slice_columns(test)["batch"],
            "file": test["path"].map(lambda p: Path(p).name).to_numpy(),
        }
    )


def pneumonia_scores(scores: np.ndarray) -> np.ndarray:
    """The pneumonia score of binary (n,) or class (n, k) scores: 1 - P(NORMAL)."""
    return scores if scores.ndim == 1 else 1.0 - scores[:, 0]


def flagged_at(scores: np.ndarray, threshold: float | None) -> np.ndarray:
    """Labelled pneumonia: at the threshold, or (three classes) any class but NORMAL."""
    return scores >= threshold if scores.ndim == 1 else scores.argmax(axis=1) != 0


def image_set(
    model: keras.Model,
    examples: Path,
    transform: Path,
    split: str,
    threshold: float | None,
    scores: np.ndarray | None = None,
) -> ImageSet:
    """A saved split as one side of the shift report (scores computed unless given)."""
    if scores is None:
        scores = predict_split(model, transform, split)
    return scored_image_set(
        model, examples, transform, split, pneumonia_scores(scores), flagged_at(scores, threshold)
    )


def scored_image_set(
    model: keras.Model,
    examples: Path,
    transform: Path,
    split: str,
    scores: np.ndarray,
    flagged: np.ndarray,
) -> ImageSet:
    """A saved split as one side of the shift report, given its one score per image and
    which images are flagged; the model gives the features."""
    features = feature_model(model).predict(input_fn(transform, split, 64), verbose=0)
    rows = split_examples(examples, transform, split)
    return ImageSet(
        paths=rows["path"].to_numpy(),
        images=split_images(transform, split),
        scores=scores,
        flagged=flagged,
        features=features.reshape(len(features), -1),
        patients=rows["patient_id"].astype(str).to_numpy(),
    )


def shift_against_reference(
    model: keras.Model,
    reference_run: Path,
    new: dict[str, np.ndarray],
    seed: int,
    out_dir: Path,
    tensorboard_dir: Path | None,
) -> dict[str, Any]:
    """shift.json: this evaluation's test images (`new`: paths, images, scores, features,
    patients)
    against the training run's validation split, both flagged at that run's threshold;
    or, without that run's validation split, why there is no comparison."""
    needed = [reference_run / "transform" / "val", reference_run / "evaluator" / "metrics.json"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        return {"drift_detected": None, "reason": f"no reference: {', '.join(missing)} missing"}
    threshold = read_json(reference_run / "evaluator" / "metrics.json").get("threshold")
    reference = image_set(
        model, reference_run / "example_gen", reference_run / "transform", "val", threshold
    )
    current = ImageSet(
        paths=new["paths"],
        images=new["images"],
        scores=pneumonia_scores(new["scores"]),
        flagged=flagged_at(new["scores"], threshold),
        features=new["features"].reshape(len(new["features"]), -1),
        patients=new["patients"],
    )
    report = shift_report(reference, current, seed)
    plot_shift(reference.scores, current.scores, threshold, report, out_dir, tensorboard_dir)
    return {"reference": f"{reference_run} (validation split)", "threshold": threshold, **report}


def split_metrics(
    predictions: pd.DataFrame,
    split: str,
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    class_names: list[str],
    bootstrap_resamples: int,
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A binary split's metrics (with the classification report) and its slices."""
    rows = predictions[predictions["split"] == split]
    patients = rows["patient_id"].to_numpy()
    metrics = binary_metrics(labels, scores, threshold, bootstrap_resamples, seed, patients)
    slices = slice_metrics(
        labels, scores, threshold, patients, slice_columns(rows), bootstrap_resamples, seed
    )
    metrics["classification_report"] = skm.classification_report(
        labels,
        (scores >= threshold).astype(int),
        labels=[0, 1],
        target_names=class_names,
        output_dict=True,
        zero_division=0,
    )
    return metrics, slices


SITE_HEADLINE = ("n", "accuracy", "auc", "sensitivity", "specificity")


def site_record(result: dict[str, Any], trainer: Path, model: str | None) -> dict[str, Any]:
    """site.json: the operating point a site chose for one model (checked by its sha256),
    what `pipelines.predict --site` labels with and the model card records."""
    frozen = result.get("frozen", {})
    return {
        "site": result.get("site"),
        "model": model,
        "model_sha256": file_sha256(trainer / "model.keras"),
        "threshold": result["threshold"],
        "threshold_rule": "site_calibrated",
        "calibration": result["calibration"],
        "frozen_threshold": frozen.get("threshold"),
        "frozen_threshold_source": frozen.get("threshold_source"),
        "test": {k: result["test"][k] for k in SITE_HEADLINE if k in result.get("test", {})},
        "frozen_test": {k: frozen["test"][k] for k in SITE_HEADLINE if k in frozen.get("test", {})},
    }


def choose_site_threshold(
    labels: np.ndarray,
    scores: np.ndarray,
    patients: np.ndarray,
    rule: str,
    target_sensitivity: float,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    """The operating point chosen on a site's labelled calibration images by `rule`, with
    a percentile interval over resampled calibration patients (how much it would move
    had another few images been labelled)."""
    threshold = choose_threshold(labels, scores, rule, target_sensitivity)
    draws = []
    for weights in patient_draw_weights(patients, resamples, seed):
        chosen = np.repeat(np.arange(len(labels)), weights.astype(int))
        if len(np.unique(labels[chosen])) == 2:  # a rule needs both classes
            draws.append(choose_threshold(labels[chosen], scores[chosen], rule, target_sensitivity))
    interval = [float(v) for v in np.percentile(draws, [2.5, 97.5])] if draws else [np.nan, np.nan]
    return {
        "threshold": float(threshold),
        "threshold_ci95": interval,
        "rule": rule,
        **({"target_sensitivity": target_sensitivity} if rule == "target_sensitivity" else {}),
        "n": int(len(labels)),
        "normal": int(np.sum(labels == 0)),
        "pneumonia": int(np.sum(labels == 1)),
        "patients": int(len(np.unique(patients))),
    }


def unlabelled_summary(scores: np.ndarray, threshold: float | None) -> dict[str, Any]:
    """What metrics.json says of an unlabelled folder (`unlabelled`): n, how many images are flagged
    pneumonia at `threshold` and their share, and the mean pneumonia score; no metrics, as there are
    no labels."""
    flagged = flagged_at(scores, threshold)
    return {
        "n": int(len(scores)),
        "flagged": int(flagged.sum()),
        "flagged_share": float(flagged.mean()) if len(flagged) else float("nan"),
        "mean_score": float(np.mean(pneumonia_scores(scores))) if len(scores) else float("nan"),
    }


@dataclasses.dataclass(frozen=True)
class Scored:
    """The evaluated splits as every later stage reads them."""

    class_names: list[str]
    labels: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]
    # Patient ids by split, also of the calibration (val) split predictions.csv leaves out.
    patients: dict[str, np.ndarray]
    predictions: pd.DataFrame  # predictions.csv
    metric_splits: list[str]  # the splits that get metrics

    @property
    def binary(self) -> bool:
        """One score and a threshold (NORMAL/PNEUMONIA), not class scores and argmax."""
        return len(self.class_names) == 2

    @property
    def labelled(self) -> bool:
        """False for an unlabelled folder (labels -1): scores, no metrics."""
        return bool(np.all(self.labels["test"] >= 0))

    def curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(labels, scores) of each split with metrics, as the binary plots take them."""
        return {split: (self.labels[split], self.scores[split]) for split in self.metric_splits}


def prediction_table(
    rows: pd.DataFrame, labels: np.ndarray, scores: np.ndarray, split: str, class_names: list[str]
) -> pd.DataFrame:
    """One split's rows of predictions.csv: one score column, or one a class and the argmax."""
    table = pd.DataFrame(
        {
            "path": rows["path"].to_numpy(),
            "label": [class_names[i] if i >= 0 else "" for i in labels],
        }
    )
    if scores.ndim == 1:
        table["score"] = scores
    else:
        for k, name in enumerate(class_names):
            table[f"score_{name}"] = scores[:, k]
        table["predicted"] = [class_names[i] for i in scores.argmax(axis=1)]
    table["split"] = split
    table["patient_id"] = rows["patient_id"].astype(str).to_numpy()
    table["pathogen"] = rows["pathogen"].to_numpy() if "pathogen" in rows else ""
    return table


def score_splits(
    model: keras.Model, examples: Path, transform: Path, spec: dict[str, Any], site: bool
) -> Scored:
    """Scores val and test (those present) with the model; `site`: val holds a site's
    calibration images, which choose the threshold, so only test gets metrics and rows."""
    class_names = spec["class_names"]
    splits = [split for split in EVAL_SPLITS if split in spec["counts"]]
    labels, scores, tables = {}, {}, []
    for split in splits:
        labels[split] = split_labels(transform, split)
        scores[split] = predict_split(model, transform, split)
        rows = split_examples(examples, transform, split)
        tables.append(prediction_table(rows, labels[split], scores[split], split, class_names))
    predictions = pd.concat(tables, ignore_index=True)
    patients = {split: table["patient_id"].to_numpy() for split, table in zip(splits, tables)}
    labelled = bool(np.all(labels["test"] >= 0))
    # Calibration images choose the threshold and never count in the reported metrics.
    metric_splits = ["test"] if site or not labelled else splits
    if site:
        predictions = predictions[predictions["split"] == "test"].reset_index(drop=True)
    return Scored(class_names, labels, scores, patients, predictions, metric_splits)


def threshold_result(
    scored: Scored,
    rule: str,
    target_sensitivity: float,
    frozen_threshold: float | None,
    threshold_source: str | None,
) -> dict[str, Any]:
    """metrics.json's threshold keys without a site's calibration images: frozen (external
    validation), chosen on val by `rule`, or (three classes) none, argmax."""
    if not scored.binary:
        return {"threshold": None, "threshold_rule": "argmax"}
    if frozen_threshold is not None:
        return {
            "threshold": float(frozen_threshold),
            "threshold_rule": "frozen",
            "threshold_source": threshold_source,
        }
    labels, scores = scored.labels["val"], scored.scores["val"]
    return {
        "threshold": choose_threshold(labels, scores, rule, target_sensitivity),
        "threshold_rule": f"{rule}_on_val",
        **({"target_sensitivity": target_sensitivity} if rule == "target_sensitivity" else {}),
    }


def site_threshold_result(
    scored: Scored,
    rule: str,
    target_sensitivity: float,
    calibration_dir: str,
    site_name: str | None,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    """metrics.json's threshold keys when a site's labelled calibration images (the val
    split) choose it, with its interval over `resamples` draws of their patients."""
    calibration = choose_site_threshold(
        scored.labels["val"],
        scored.scores["val"],
        scored.patients["val"],
        rule,
        target_sensitivity,
        resamples,
        seed,
    )
    return {
        "threshold": calibration["threshold"],
        "threshold_rule": "site_calibrated",
        "site": site_name,
        "calibration": {"dir": calibration_dir, **calibration},
    }


def binary_results(
    scored: Scored, threshold: float, bootstrap_resamples: int, seed: int
) -> dict[str, Any]:
    """A labelled binary evaluation's `slices` and per-split metrics at `threshold`."""
    result: dict[str, Any] = {"slices": {}}
    for split in scored.metric_splits:
        result[split], result["slices"][split] = split_metrics(
            scored.predictions,
            split,
            scored.labels[split],
            scored.scores[split],
            threshold,
            scored.class_names,
            bootstrap_resamples,
            seed,
        )
    return result


def frozen_result(
    scored: Scored,
    frozen_threshold: float,
    threshold_source: str | None,
    bootstrap_resamples: int,
    seed: int,
) -> dict[str, Any]:
    """metrics.json's `frozen`: the training run's threshold on the same test images as
    the site-calibrated one, for comparison."""
    return {
        "threshold": float(frozen_threshold),
        "threshold_source": threshold_source,
        "test": binary_metrics(
            scored.labels["test"],
            scored.scores["test"],
            float(frozen_threshold),
            bootstrap_resamples,
            seed,
            scored.predictions["patient_id"].to_numpy(),
        ),
    }


def three_class_results(scored: Scored) -> dict[str, Any]:
    """A labelled three-class evaluation's per-split metrics (argmax, no threshold)."""
    return {
        split: multiclass_metrics(scored.labels[split], scored.scores[split], scored.class_names)
        for split in scored.metric_splits
    }


def plot_binary(
    scored: Scored,
    result: dict[str, Any],
    images: dict[str, np.ndarray],
    seed: int,
    out_dir: Path,
    tensorboard_dir: Path | None,
) -> None:
    """ROC, precision-recall, reliability, score histograms and galleries at the threshold
    (`images`: each metric split's saved images)."""
    curves, threshold, class_names = scored.curves(), result["threshold"], scored.class_names
    origin = {"site_calibrated": "chosen on the site", "frozen": "frozen"}.get(
        result["threshold_rule"], "chosen on val"
    )
    plot_roc(curves, threshold, out_dir, tensorboard_dir, origin)
    plot_precision_recall(curves, out_dir, tensorboard_dir)
    plot_reliability(curves, out_dir, tensorboard_dir)
    plot_score_histograms(curves, class_names, threshold, out_dir, tensorboard_dir)
    predictions = scored.predictions
    frame = predictions[predictions["split"].isin(scored.metric_splits)]
    draw_galleries(frame, images, threshold, class_names, seed, out_dir, tensorboard_dir)


def plot_labelled(
    scored: Scored,
    result: dict[str, Any],
    examples: Path,
    out_dir: Path,
    tensorboard_dir: Path | None,
) -> None:
    """Every task's confusion matrices, and the class balance of examples.csv."""
    for split in scored.metric_splits:
        confusion = result[split]["confusion_matrix"]
        plot_confusion(confusion, scored.class_names, split, out_dir, tensorboard_dir)
    frame = pd.read_csv(examples / "examples.csv", keep_default_na=False)
    plot_class_balance(frame, out_dir, tensorboard_dir)


def project_and_compare(
    model: keras.Model,
    transform: Path,
    scored: Scored,
    test_images: np.ndarray,
    threshold: float | None,
    reference_run: str | None,
    seed: int,
    out_dir: Path,
    tensorboard_dir: Path | None,
) -> dict[str, Any] | None:
    """The test images' features for the Projector (with a TensorBoard folder) and the
    shift report against `reference_run`, written to shift.json (None without one)."""
    predictions = scored.predictions
    test = predictions[predictions["split"] == "test"].reset_index(drop=True)
    features = None
    if tensorboard_dir is not None or reference_run:
        features = feature_model(model).predict(input_fn(transform, "test", 64), verbose=0)
    if tensorboard_dir is not None:  # the Projector: where the errors sit among the features
        metadata = projector_metadata(test, scored.class_names, threshold)
        write_projector(tensorboard_dir, "test_images", features, test_images, metadata)
    if not reference_run:
        return None
    new = {
        "paths": test["path"].to_numpy(),
        "images": test_images,
        "scores": scored.scores["test"],
        "features": features,
        "patients": test["patient_id"].astype(str).to_numpy(),
    }
    shift = shift_against_reference(model, Path(reference_run), new, seed, out_dir, tensorboard_dir)
    write_json(out_dir / "shift.json", shift)
    return shift


def write_results(
    out_dir: Path,
    result: dict[str, Any],
    shift: dict[str, Any] | None,
    site: bool,
    trainer: Path,
    examples: Path,
    run_flags: dict[str, Any] | None,
) -> dict[str, Any]:
    """metrics.json, site.json (a site's calibration) and report.html; returns the
    component's outputs (the headline test figures)."""
    write_json(out_dir / "metrics.json", result)
    if site:
        write_json(
            out_dir / "site.json", site_record(result, trainer, (run_flags or {}).get("model"))
        )
    write_evaluation_report(
        out_dir / "report.html",
        "Pneumonia classifier: evaluation",
        result,
        read_json(examples / "stats.json"),
        dict(run_flags or {}),
        sorted(out_dir.glob("*.png")),
        shift=shift,
    )
    headline = result.get("test", {})
    return {
        "metrics": "metrics.json",
        "test_auc": headline.get("auc", headline.get("auc_macro")),
        "test_accuracy": headline.get("accuracy"),
        "threshold": result["threshold"],
        "drift_detected": None if shift is None else shift.get("drift_detected"),
    }


def multilabel_predictions(
    model: keras.Model, examples: Path, transform: Path, splits: list[str], findings: list[str]
) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """predictions.csv of a multi-label run (path, label, score_<finding>..., split,
    patient_id), and per split the 0/1 labels and scores (n, findings), in saved order."""
    labels, scores, tables = {}, {}, []
    for split in splits:
        labels[split] = split_labels(transform, split)
        scores[split] = model.predict(input_fn(transform, split, 64), verbose=0)
        rows = split_examples(examples, transform, split)
        table = pd.DataFrame({"path": rows["path"].to_numpy(), "label": rows["label"].to_numpy()})
        for k, name in enumerate(findings):
            table[f"score_{name}"] = scores[split][:, k]
        table["split"] = split
        table["patient_id"] = rows["patient_id"].astype(str).to_numpy()
        tables.append(table)
    return pd.concat(tables, ignore_index=True), labels, scores


def multilabel_image_set(
    model: keras.Model,
    examples: Path,
    transform: Path,
    split: str,
    thresholds: np.ndarray,
    scores: np.ndarray | None = None,
) -> ImageSet:
    """A multi-label split as one side of the shift report: its score is the highest
    finding probability, flagged means some finding at its threshold (scores computed
    unless given; (n, findings) even for one finding, so not predict_split)."""
    if scores is None:
        scores = model.predict(input_fn(transform, split, 64), verbose=0)
    return scored_image_set(
        model, examples, transform, split, scores.max(axis=1), (scores >= thresholds).any(axis=1)
    )


def multilabel_shift(
    model: keras.Model,
    examples: Path,
    transform: Path,
    reference_run: Path,
    thresholds: np.ndarray,
    seed: int,
    test_scores: np.ndarray,
) -> dict[str, Any]:
    """shift.json of a multi-label evaluation: its test images (`test_scores`, already
    predicted) against the training run's
    validation split (components/shift.py), on the highest finding probability and the
    features; or, without that split, why there is no comparison."""
    needed = [reference_run / "transform" / "val", reference_run / "evaluator" / "metrics.json"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        return {"drift_detected": None, "reason": f"no reference: {', '.join(missing)} missing"}
    reference = multilabel_image_set(
        model, reference_run / "example_gen", reference_run / "transform", "val", thresholds
    )
    current = multilabel_image_set(model, examples, transform, "test", thresholds, test_scores)
    return {
        "reference": f"{reference_run} (validation split)",
        "score": "the highest finding probability; flagged: any finding at its threshold",
        **shift_report(reference, current, seed),
    }


def evaluate_multilabel(
    out_dir: Path,
    *,
    examples: Path,
    transform: Path,
    trainer: Path,
    bootstrap_resamples: int,
    seed: int,
    frozen_thresholds: dict[str, float] | None,
    threshold_source: str | None,
    reference_run: str | None,
    run_flags: dict[str, Any] | None,
    tensorboard_dir: Path | None,
) -> dict[str, Any]:
    """The Evaluator of a multi-label run (one sigmoid per finding): a threshold per
    finding chosen on val by Youden's J (or `frozen_thresholds`, external validation),
    then per split each finding's AUC, average precision, sensitivity and specificity
    with patient-level intervals, and the macro and micro AUC (components/
    multilabel_metrics.py); predictions.csv, metrics.json, roc_per_finding.png and
    report.html (the per-finding table beside CheXNet's published AUCs); with
    `reference_run` (pipelines.evaluate), shift.json (`multilabel_shift`)."""
    spec = load_spec(transform)
    findings = spec["class_names"]
    splits = [split for split in EVAL_SPLITS if split in spec["counts"]]
    model = load_trained_model(trainer)
    predictions, labels, scores = multilabel_predictions(
        model, examples, transform, splits, findings
    )
    write_csv(out_dir / "predictions.csv", predictions)
    if frozen_thresholds is not None:
        missing = [name for name in findings if name not in frozen_thresholds]
        if missing:
            raise DataError(f"the frozen thresholds ({threshold_source}) lack {', '.join(missing)}")
        details = {
            n: {"threshold": float(frozen_thresholds[n]), "rule": "frozen"} for n in findings
        }
        result: dict[str, Any] = {"threshold_rule": "frozen", "threshold_source": threshold_source}
    else:
        details = choose_finding_thresholds(labels["val"], scores["val"], findings)
        result = {"threshold_rule": "youden_on_val per finding"}
    thresholds = {name: details[name]["threshold"] for name in findings}
    result = {
        "task": "multilabel",
        "findings": findings,
        "threshold": None,  # no single threshold: `thresholds` has one per finding
        **result,
        "thresholds": thresholds,
        "threshold_details": details,
    }
    labelled = all(bool(np.all(labels[s] >= 0)) for s in splits)
    metric_splits = splits if labelled else []
    for split in metric_splits:
        patients = predictions.loc[predictions["split"] == split, "patient_id"].to_numpy()
        result[split] = multilabel_split_metrics(
            labels[split],
            scores[split],
            thresholds,
            findings,
            patients,
            bootstrap_resamples,
            seed,
        )
    if not labelled:
        present = scores["test"] >= np.array([thresholds[n] for n in findings])
        result["unlabelled"] = {
            "n": int(len(present)),
            "flagged_any": int(present.any(axis=1).sum()),
            "flagged_per_finding": dict(zip(findings, present.sum(axis=0).tolist())),
        }
    if "test" in metric_splits:
        plot_finding_rocs(
            labels["test"],
            scores["test"],
            findings,
            result["test"]["evaluable_findings"],
            "test",
            out_dir,
            tensorboard_dir,
        )
    shift = None
    if reference_run:
        vector = np.array([thresholds[n] for n in findings])
        shift = multilabel_shift(
            model, examples, transform, Path(reference_run), vector, seed, scores["test"]
        )
        write_json(out_dir / "shift.json", shift)
    write_json(out_dir / "metrics.json", result)
    write_multilabel_report(
        out_dir / "report.html",
        result,
        read_json(examples / "stats.json"),
        dict(run_flags or {}),
        sorted(out_dir.glob("*.png")),
    )
    test = result.get("test", {})
    return {
        "metrics": "metrics.json",
        "test_auc": test.get("macro_auc"),
        "test_macro_auc": test.get("macro_auc"),
        "test_micro_auc": test.get("micro_auc"),
        "threshold": None,
        "drift_detected": None if shift is None else shift.get("drift_detected"),
    }


def run(
    out_dir: Path,
    *,
    examples: Path,
    transform: Path,
    trainer: Path,
    threshold_rule: str = "youden",
    target_sensitivity: float = 0.95,
    bootstrap_resamples: int = 1000,
    seed: int = 42,
    frozen_threshold: float | None = None,
    frozen_thresholds: dict[str, float] | None = None,
    threshold_source: str | None = None,
    reference_run: str | None = None,
    calibration_dir: str | None = None,
    site_name: str | None = None,
    run_flags: dict[str, Any] | None = None,
    tensorboard_dir: Path | None = None,
) -> dict[str, Any]:
    """The Evaluator component: metrics.json, predictions.csv, plots and report.html.

    The binary threshold is chosen on val by `threshold_rule`, unless `frozen_threshold`
    is given (external validation: the training run's threshold, recorded with its
    `threshold_source`), which then applies unchanged to every split present.
    `calibration_dir`: the val split holds a new site's labelled calibration images; the
    threshold is chosen on them ("site_calibrated"), reported beside the frozen one's
    figures on the same test images, and written to site.json; val gets no metrics.
    A test split without labels (an unlabelled folder) gets scores and the share
    flagged, no metrics. `reference_run` (the run that trained the model): shift.json
    compares the test images with its validation images. A multi-label run is evaluated
    per finding (`evaluate_multilabel`; `frozen_thresholds`: the training run's, one per
    finding).
    """
    spec = load_spec(transform)
    if spec["task"] == "multilabel":
        return evaluate_multilabel(
            out_dir,
            examples=examples,
            transform=transform,
            trainer=trainer,
            bootstrap_resamples=bootstrap_resamples,
            seed=seed,
            frozen_thresholds=frozen_thresholds,
            threshold_source=threshold_source,
            reference_run=reference_run,
            run_flags=run_flags,
            tensorboard_dir=tensorboard_dir,
        )
    model = load_trained_model(trainer)
    site = calibration_dir is not None and len(spec["class_names"]) == 2
    scored = score_splits(model, examples, transform, spec, site)
    write_csv(out_dir / "predictions.csv", scored.predictions)
    test_images = split_images(transform, "test")
    if site:  # a site's calibration images (val) choose the threshold
        result = site_threshold_result(
            scored,
            threshold_rule,
            target_sensitivity,
            calibration_dir,
            site_name,
            bootstrap_resamples,
            seed,
        )
    else:
        result = threshold_result(
            scored, threshold_rule, target_sensitivity, frozen_threshold, threshold_source
        )
    if not scored.labelled:
        result["unlabelled"] = unlabelled_summary(scored.scores["test"], result["threshold"])
    elif scored.binary:
        result.update(binary_results(scored, result["threshold"], bootstrap_resamples, seed))
        if site and frozen_threshold is not None:
            result["frozen"] = frozen_result(
                scored, frozen_threshold, threshold_source, bootstrap_resamples, seed
            )
        images = {
            s: test_images if s == "test" else split_images(transform, s)
            for s in scored.metric_splits
        }
        plot_binary(scored, result, images, seed, out_dir, tensorboard_dir)
    else:
        result.update(three_class_results(scored))
    if scored.labelled:
        plot_labelled(scored, result, examples, out_dir, tensorboard_dir)
    shift = project_and_compare(
        model,
        transform,
        scored,
        test_images,
        result["threshold"],
        reference_run,
        seed,
        out_dir,
        tensorboard_dir,
    )
    return write_results(out_dir, result, shift, site, trainer, examples, run_flags)
