"""Evaluator: predictions on val and test, a threshold chosen on val only, metrics, plots.

Writes evaluator/metrics.json (DESIGN.md keys), predictions.csv (path,label,score,split),
and ROC / confusion-matrix PNGs that also go to TensorBoard.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn import metrics as skm

from components.artifacts import write_csv, write_json
from components.clinical_metrics import binary_metrics, youden_threshold
from components.figures import save_figure
from components.transform import input_fn, load_spec, split_labels, split_rows

EVAL_SPLITS = ("val", "test")


def load_trained_model(trainer_dir: Path) -> keras.Model:
    # safe_mode refuses to deserialize arbitrary Python code (lambdas) from a model file.
    return keras.saving.load_model(os.fspath(trainer_dir / "model.keras"), compile=False,
                                   safe_mode=True)


def predict_split(model: keras.Model, transform_dir: Path, split: str,
                  batch_size: int = 64) -> np.ndarray:
    """Class scores for a saved split, in saved order: (n,) for binary, (n, k) otherwise."""
    scores = model.predict(input_fn(transform_dir, split, batch_size), verbose=0)
    return scores[:, 0] if scores.shape[-1] == 1 else scores


def choose_threshold(y_val: np.ndarray, val_scores: np.ndarray, rule: str,
                     target_sensitivity: float) -> float:
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


def multiclass_metrics(y_true: np.ndarray, scores: np.ndarray,
                       class_names: list[str]) -> dict[str, Any]:
    y_pred = scores.argmax(axis=1)
    labels = list(range(len(class_names)))
    present = len(np.unique(y_true)) == len(class_names)
    onehot = np.eye(len(class_names))[y_true]
    return {
        "n": int(len(y_true)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
        "auc_macro": float(skm.roc_auc_score(y_true, scores, multi_class="ovr", average="macro",
                                             labels=labels)) if present else float("nan"),
        "auc_micro": float(skm.roc_auc_score(onehot, scores, average="micro")) if present else float("nan"),
        "f1_macro": float(skm.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "per_class": skm.classification_report(y_true, y_pred, labels=labels,
                                               target_names=class_names, output_dict=True,
                                               zero_division=0),
    }


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float,
             out_dir: Path, tensorboard_dir: Path | None) -> None:
    fig, ax = plt.subplots(figsize=(5, 5))
    for split, (y_true, scores) in curves.items():
        if len(np.unique(y_true)) < 2:
            continue
        fpr, tpr, _ = skm.roc_curve(y_true, scores)
        ax.plot(fpr, tpr, label=f"{split} (AUC {skm.roc_auc_score(y_true, scores):.3f})")
        y_pred = scores >= threshold
        sens = y_pred[y_true == 1].mean()
        spec = 1.0 - y_pred[y_true == 0].mean()
        ax.plot(1.0 - spec, sens, "o", color=ax.lines[-1].get_color())
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity",
           title=f"ROC (dots: threshold {threshold:.3f} chosen on val)")
    ax.legend(loc="lower right")
    save_figure(fig, out_dir / "roc.png", tensorboard_dir, "roc")


def plot_confusion(matrix: list[list[int]], class_names: list[str], split: str,
                   out_dir: Path, tensorboard_dir: Path | None) -> None:
    counts = np.asarray(matrix)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, f"{count}\n{rates[i, j]:.0%}", ha="center", va="center",
                color="white" if rates[i, j] > 0.5 else "black")
    ax.set(xticks=range(len(class_names)), yticks=range(len(class_names)),
           xticklabels=class_names, yticklabels=class_names, xlabel="predicted", ylabel="true",
           title=f"confusion matrix ({split})")
    save_figure(fig, out_dir / f"confusion_matrix_{split}.png", tensorboard_dir,
                f"confusion_matrix_{split}")


def evaluator(
    out_dir: Path,
    *,
    examples: Path,
    transform: Path,
    trainer: Path,
    threshold_rule: str = "youden",
    target_sensitivity: float = 0.95,
    bootstrap_resamples: int = 1000,
    seed: int = 42,
    tensorboard_dir: Path | None = None,
) -> dict[str, Any]:
    """The Evaluator component: metrics.json, predictions.csv and plots."""
    spec = load_spec(transform)
    class_names = spec["class_names"]
    frame = pd.read_csv(examples / "examples.csv", keep_default_na=False)
    model = load_trained_model(trainer)
    labels, scores, prediction_tables = {}, {}, []
    for split in EVAL_SPLITS:
        labels[split] = split_labels(transform, split)
        scores[split] = predict_split(model, transform, split)
        rows = frame[frame["split"] == split].reset_index(drop=True).iloc[split_rows(transform, split)]
        table = pd.DataFrame({"path": rows["path"].to_numpy(),
                              "label": [class_names[i] for i in labels[split]]})
        if scores[split].ndim == 1:
            table["score"] = scores[split]
        else:
            for k, name in enumerate(class_names):
                table[f"score_{name}"] = scores[split][:, k]
            table["predicted"] = [class_names[i] for i in scores[split].argmax(axis=1)]
        table["split"] = split
        prediction_tables.append(table)
    write_csv(out_dir / "predictions.csv", pd.concat(prediction_tables, ignore_index=True))

    if len(class_names) == 2:
        threshold = choose_threshold(labels["val"], scores["val"], threshold_rule, target_sensitivity)
        result: dict[str, Any] = {"threshold": threshold, "threshold_rule": f"{threshold_rule}_on_val"}
        if threshold_rule == "target_sensitivity":
            result["target_sensitivity"] = target_sensitivity
        for split in EVAL_SPLITS:
            result[split] = binary_metrics(labels[split], scores[split], threshold,
                                           bootstrap_resamples, seed)
        plot_roc({s: (labels[s], scores[s]) for s in EVAL_SPLITS}, threshold, out_dir, tensorboard_dir)
    else:
        result = {"threshold": None, "threshold_rule": "argmax"}
        for split in EVAL_SPLITS:
            result[split] = multiclass_metrics(labels[split], scores[split], class_names)
    for split in EVAL_SPLITS:
        plot_confusion(result[split]["confusion_matrix"], class_names, split, out_dir, tensorboard_dir)
    write_json(out_dir / "metrics.json", result)
    headline = result["test"]
    return {"metrics": "metrics.json", "test_auc": headline.get("auc", headline.get("auc_macro")),
            "test_accuracy": headline["accuracy"], "threshold": result["threshold"]}
