"""Evaluator for the heart models: test metrics with bootstrap CIs, one ROC plot for all,
a comparison table (metrics.json, report.html, TensorBoard) and, with --cv, the mean and
spread of each metric across folds.

Each model's decision threshold is Youden's J on its own val rows (never on test), so
threshold-dependent metrics (accuracy, F1, sensitivity, ...) are honest test estimates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from components.artifacts import read_json, write_csv, write_json
from components.clinical_metrics import binary_metrics, bootstrap_ci, youden_threshold
from components.heart.model_files import (
    MODEL_COLORS,
    load_model,
    model_dir,
    predict_proba,
    trained_models,
)
from components.heart.partitions import HOLDOUT, list_partitions, load_partition
from components.reporting import html_page as report
from components.reporting.figures import plt, save_figure

TABLE_METRICS = (
    "auc",
    "accuracy",
    "balanced_accuracy",
    "f1",
    "sensitivity",
    "specificity",
    "precision",
    "pr_auc",
    "brier",
)
CV_METRICS = ("auc", "accuracy", "balanced_accuracy", "f1", "sensitivity", "specificity")
GLASSBOX = ("lasso", "nam")


def _accuracy(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(y == predicted))


def _balanced_accuracy(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean([np.mean(predicted[y == c] == c) for c in (0, 1)]))


def _f1(y: np.ndarray, predicted: np.ndarray) -> float:
    tp = np.sum((predicted == 1) & (y == 1))
    return float(2 * tp / max(np.sum(predicted == 1) + np.sum(y == 1), 1))


def split_metrics(
    y: np.ndarray, scores: np.ndarray, threshold: float, resamples: int, seed: int
) -> dict[str, Any]:
    """binary_metrics plus bootstrap CIs for accuracy, balanced accuracy and F1."""
    result = binary_metrics(y, scores, threshold, resamples=resamples, seed=seed)
    if resamples > 0 and len(np.unique(y)) == 2:
        for name, statistic in (
            ("accuracy", _accuracy),
            ("balanced_accuracy", _balanced_accuracy),
            ("f1", _f1),
        ):
            result[f"{name}_ci95"] = bootstrap_ci(
                y,
                scores,
                lambda t, s, f=statistic: f(t, (s >= threshold).astype(int)),
                resamples,
                seed,
            )
    return result


def evaluate_partition(
    transform: Path,
    trainer: Path,
    partition_name: str,
    models: list[str],
    resamples: int,
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Per model: threshold on val, metrics on val and test; and the scored rows."""
    partition = load_partition(transform, partition_name)
    results, rows = {}, []
    for kind in models:
        model = load_model(model_dir(trainer, partition_name, kind))
        scores = {split: predict_proba(model, partition.x(split)) for split in ("val", "test")}
        threshold = youden_threshold(partition.y("val"), scores["val"])
        results[kind] = {"threshold": threshold, "threshold_rule": "youden_on_val"}
        for split in ("val", "test"):
            results[kind][split] = split_metrics(
                partition.y(split),
                scores[split],
                threshold,
                resamples if split == "test" else 0,
                seed,
            )
            rows.append(
                pd.DataFrame(
                    {
                        "partition": partition_name,
                        "model": kind,
                        "patient_id": partition.ids(split),
                        "label": partition.y(split),
                        "score": scores[split],
                        "split": split,
                    }
                )
            )
    return results, pd.concat(rows, ignore_index=True)


def comparison(results: dict[str, Any], models: list[str]) -> dict[str, Any]:
    """metrics.json's `comparison`: each model's test row (threshold, `TABLE_METRICS` with their
    intervals), the model of best test AUC and, beside the MLP, the best glassbox model (lasso, NAM)
    and its AUC minus the MLP's: the project's goal is a gap within 0.01."""
    table = []
    for kind in models:
        test = results[kind]["test"]
        row = {"model": kind, "threshold": results[kind]["threshold"]}
        for metric in TABLE_METRICS:
            row[metric] = test[metric]
            if f"{metric}_ci95" in test:
                row[f"{metric}_ci95"] = test[f"{metric}_ci95"]
        table.append(row)
    summary: dict[str, Any] = {
        "split": "test",
        "table": table,
        "best_auc": max(table, key=lambda r: r["auc"])["model"],
    }
    glassboxes = [k for k in models if k in GLASSBOX]
    if "mlp" in models and glassboxes:
        best = max(glassboxes, key=lambda k: results[k]["test"]["auc"])
        summary["best_glassbox"] = best
        # The goal: an interpretable model within 0.01 AUC of the black box.
        summary["best_glassbox_minus_mlp_auc"] = (
            results[best]["test"]["auc"] - results["mlp"]["test"]["auc"]
        )
    return summary


def cv_summary(per_fold: dict[str, dict[str, Any]], models: list[str]) -> dict[str, Any]:
    """Mean, standard deviation, min and max of each test metric across folds."""
    summary: dict[str, Any] = {"folds": len(per_fold), "models": {}}
    for kind in models:
        summary["models"][kind] = {}
        for metric in CV_METRICS:
            values = np.array([fold[kind]["test"][metric] for fold in per_fold.values()])
            summary["models"][kind][metric] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values, ddof=1)),
                "min": float(np.min(values)),
                "max": float(np.max(values)),
                "per_fold": values.tolist(),
            }
    return summary


def plot_roc(predictions: pd.DataFrame, results: dict[str, Any], models: list[str]) -> plt.Figure:
    """roc.png: every model's ROC curve on the test split, its AUC and bootstrap interval in the
    legend."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for kind in models:
        rows = predictions[(predictions["model"] == kind) & (predictions["split"] == "test")]
        fpr, tpr, _ = skm.roc_curve(rows["label"], rows["score"])
        test = results[kind]["test"]
        ci = test.get("auc_ci95", [np.nan, np.nan])
        ax.plot(
            fpr,
            tpr,
            color=MODEL_COLORS[kind],
            label=f"{kind}: AUC {test['auc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]",
        )
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC, test split")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def plot_pr(predictions: pd.DataFrame, results: dict[str, Any], models: list[str]) -> plt.Figure:
    """pr.png: every model's precision-recall curve on the test split, with its average precision."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for kind in models:
        rows = predictions[(predictions["model"] == kind) & (predictions["split"] == "test")]
        precision, recall, _ = skm.precision_recall_curve(rows["label"], rows["score"])
        ax.plot(
            recall,
            precision,
            color=MODEL_COLORS[kind],
            label=f"{kind}: AP {results[kind]['test']['pr_auc']:.3f}",
        )
    ax.set(xlabel="recall (sensitivity)", ylabel="precision", title="Precision-recall, test split")
    ax.legend(loc="lower left", fontsize=8)
    return fig


def plot_calibration(predictions: pd.DataFrame, models: list[str]) -> plt.Figure:
    """calibration.png: observed rate against mean predicted risk in 8 bins, per model, on the test
    split."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for kind in models:
        rows = predictions[(predictions["model"] == kind) & (predictions["split"] == "test")]
        observed, predicted = calibration_curve(rows["label"], rows["score"], n_bins=8)
        ax.plot(predicted, observed, "o-", color=MODEL_COLORS[kind], label=kind)
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="mean predicted risk", ylabel="observed rate", title="Calibration, test split")
    ax.legend(fontsize=8)
    return fig


def plot_confusion(results: dict[str, Any], models: list[str]) -> plt.Figure:
    """confusion_matrices.png: one test-split confusion matrix per model, at its threshold."""
    fig, axes = plt.subplots(1, len(models), figsize=(3.6 * len(models), 3.4), squeeze=False)
    for ax, kind in zip(axes[0], models):
        matrix = np.array(results[kind]["test"]["confusion_matrix"])
        ax.imshow(matrix, cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(
                j,
                i,
                str(value),
                ha="center",
                va="center",
                color="white" if value > matrix.max() / 2 else "black",
            )
        ax.set(
            xticks=[0, 1],
            yticks=[0, 1],
            xticklabels=["no HD", "HD"],
            yticklabels=["no HD", "HD"],
            xlabel="predicted",
            ylabel="true",
            title=f"{kind} (threshold {results[kind]['threshold']:.2f})",
        )
    fig.tight_layout()
    return fig


def plot_comparison(table: list[dict[str, Any]]) -> plt.Figure:
    """comparison.png: grouped bars of the main test metrics per model with their 95% bootstrap
    intervals as error bars."""
    metrics = ("auc", "accuracy", "balanced_accuracy", "f1", "sensitivity", "specificity")
    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.8 / len(table)
    for i, row in enumerate(table):
        values = np.array([row[m] for m in metrics])
        low = np.array([row.get(f"{m}_ci95", [row[m], row[m]])[0] for m in metrics])
        high = np.array([row.get(f"{m}_ci95", [row[m], row[m]])[1] for m in metrics])
        ax.bar(
            np.arange(len(metrics)) + i * width,
            values,
            width,
            label=row["model"],
            color=MODEL_COLORS[row["model"]],
            yerr=[values - low, high - values],
            capsize=2,
        )
    ax.set_xticks(np.arange(len(metrics)) + width * (len(table) - 1) / 2, metrics)
    ax.set_ylim(0.5, 1.0)
    ax.set_title("Test metrics with 95% bootstrap CIs")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_cv(summary: dict[str, Any]) -> plt.Figure:
    """cv_auc.png: each model's test AUC per cross-validation fold, and their mean ± sd."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, (kind, metrics) in enumerate(summary["models"].items()):
        values = metrics["auc"]["per_fold"]
        ax.scatter(np.full(len(values), i), values, alpha=0.6, color=MODEL_COLORS[kind])
        ax.errorbar(
            i + 0.15, metrics["auc"]["mean"], yerr=metrics["auc"]["std"], fmt="ks", capsize=4
        )
    ax.set_xticks(range(len(summary["models"])), list(summary["models"]))
    ax.set(ylabel="test AUC", title=f"{summary['folds']}-fold CV: folds and mean ± sd")
    return fig


def log_to_tensorboard(
    tensorboard_dir: Path | None, results: dict[str, Any], models: list[str], markdown: str
) -> None:
    """Writes every model's test `CV_METRICS` as TensorBoard scalars (`test_<metric>/<model>`) and
    the comparison table as text; nothing without a `tensorboard_dir`."""
    if tensorboard_dir is None:
        return
    writer = tf.summary.create_file_writer(str(tensorboard_dir))
    with writer.as_default():
        for kind in models:
            for metric in CV_METRICS:
                tf.summary.scalar(f"test_{metric}/{kind}", results[kind]["test"][metric], step=0)
        tf.summary.text("comparison", markdown, step=0)
    writer.close()


def comparison_markdown(table: list[dict[str, Any]]) -> str:
    """The comparison table (the first six `TABLE_METRICS`, intervals in brackets) as Markdown, for
    TensorBoard's text tab."""
    header = "| model | " + " | ".join(TABLE_METRICS[:6]) + " |"
    lines = [header, "|" + "---|" * 7]
    for row in table:
        cells = [
            f"{row[m]:.3f}"
            + (
                f" [{row[m + '_ci95'][0]:.3f}, {row[m + '_ci95'][1]:.3f}]"
                if f"{m}_ci95" in row
                else ""
            )
            for m in TABLE_METRICS[:6]
        ]
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_html(
    out_dir: Path,
    eda: Path,
    trainer: Path,
    metrics: dict[str, Any],
    models: list[str],
    figures: list[str],
) -> None:
    """report.html: the test comparison with its figures, the glassbox-minus-MLP gap, the
    cross-validation table when there are folds, the EDA step's figures, each model's training
    history, and a link to the explainer's report."""
    table = metrics["comparison"]["table"]
    columns = ["model", "threshold"] + [m for m in TABLE_METRICS]
    rows = [
        [row["model"], report.fmt(row["threshold"])]
        + [
            report.fmt(row[m]) + (f" {report.fmt(row[m + '_ci95'])}" if f"{m}_ci95" in row else "")
            for m in TABLE_METRICS
        ]
        for row in table
    ]
    parts = [
        report.section(
            "Comparison on the test split",
            report.paragraph(
                "95% bootstrap intervals in brackets; thresholds by Youden's J on val."
            ),
            report.table(columns, rows),
            *(report.image(out_dir / f"{name}.png") for name in figures),
        )
    ]
    if "best_glassbox_minus_mlp_auc" in metrics["comparison"]:
        gap = metrics["comparison"]["best_glassbox_minus_mlp_auc"]
        parts.append(
            report.paragraph(
                f"Best glassbox model ({metrics['comparison']['best_glassbox']}) minus the MLP, "
                f"test AUC: {gap:+.3f} (goal: within 0.01)."
            )
        )
    if "cv" in metrics:
        cv = metrics["cv"]
        rows = [
            [kind] + [f"{m[k]['mean']:.3f} ± {m[k]['std']:.3f}" for k in CV_METRICS]
            for kind, m in cv["models"].items()
        ]
        parts.append(
            report.section(
                f"{cv['folds']}-fold cross-validation (test folds, mean ± sd)",
                report.table(["model", *CV_METRICS], rows),
                report.image(out_dir / "cv_auc.png"),
            )
        )
    eda_figures = read_json(eda / "summary.json")["figures"]
    parts.append(
        report.section(
            "Exploratory data analysis", *(report.image(eda / name) for name in eda_figures)
        )
    )
    histories = [report.image(model_dir(trainer, HOLDOUT, k) / "history.png", k) for k in models]
    parts.append(report.section("Training", *histories))
    parts.append(
        report.section(
            "Explanations",
            report.paragraph(
                "SHAP values, NAM shape functions, lasso coefficients and the "
                "feature-importance cross-check: the explainer step's report."
            ),
            report.link("../explainer/report.html", "explainer/report.html"),
        )
    )
    report.write_report(out_dir / "report.html", "Heart disease: model evaluation", parts)


def run(
    out_dir: Path,
    *,
    transform: Path,
    trainer: Path,
    eda: Path,
    seed: int,
    resamples: int = 1000,
    tensorboard_dir: Path | None = None,
) -> dict[str, Any]:
    """The heart Evaluator: every trained model on the holdout's test split (thresholds by Youden's
    J on val, `resamples` bootstrap intervals), and on each cross-validation fold when the Transform
    made them. Writes metrics.json, predictions.csv, the figures and report.html; returns each
    model's test AUC and interval."""
    models = trained_models(trainer)
    results, predictions = evaluate_partition(transform, trainer, HOLDOUT, models, resamples, seed)
    metrics: dict[str, Any] = dict(results)
    metrics["comparison"] = comparison(results, models)
    folds = [name for name in list_partitions(transform) if name != HOLDOUT]
    if folds:
        per_fold = {}
        for name in folds:
            # No bootstrap per fold: the spread across folds is the uncertainty reported.
            per_fold[name], scored = evaluate_partition(transform, trainer, name, models, 0, seed)
            predictions = pd.concat([predictions, scored], ignore_index=True)
        metrics["cv"] = cv_summary(per_fold, models)
    write_json(out_dir / "metrics.json", metrics)
    write_csv(out_dir / "predictions.csv", predictions)

    holdout = predictions[predictions["partition"] == HOLDOUT]
    figures = {
        "roc": plot_roc(holdout, results, models),
        "pr": plot_pr(holdout, results, models),
        "calibration": plot_calibration(holdout, models),
        "confusion_matrices": plot_confusion(results, models),
        "comparison": plot_comparison(metrics["comparison"]["table"]),
    }
    if folds:
        figures["cv_auc"] = plot_cv(metrics["cv"])
    for name, fig in figures.items():
        save_figure(fig, out_dir / f"{name}.png", tensorboard_dir, f"evaluator/{name}")
    log_to_tensorboard(
        tensorboard_dir, results, models, comparison_markdown(metrics["comparison"]["table"])
    )
    write_html(out_dir, eda, trainer, metrics, models, [n for n in figures if n != "cv_auc"])
    return {
        kind: {
            "test_auc": results[kind]["test"]["auc"],
            "test_auc_ci95": results[kind]["test"].get("auc_ci95"),
        }
        for kind in models
    }
