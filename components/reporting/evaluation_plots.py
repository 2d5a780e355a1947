"""The Evaluator's pictures: curves, calibration, score distributions, image galleries.

Each function draws one figure and saves it with `save_figure` (PNG + TensorBoard image).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from components.artifacts import SPLITS
from components.reporting.figures import plot_split_counts, save_figure

Curves = dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (labels, scores)


def plot_roc(
    curves: Curves,
    threshold: float,
    out_dir: Path,
    tensorboard_dir: Path | None,
    threshold_origin: str = "chosen on val",
) -> None:
    """roc.png: each split's ROC curve with its AUC, a dot where `threshold` operates on it
    (`threshold_origin` says where the threshold came from); a one-class split is left out."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for split, (y_true, scores) in curves.items():
        if len(np.unique(y_true)) < 2:
            continue
        fpr, tpr, _ = skm.roc_curve(y_true, scores)
        ax.plot(fpr, tpr, label=f"{split} (AUC {skm.roc_auc_score(y_true, scores):.3f})")
        flagged = scores >= threshold
        ax.plot(
            flagged[y_true == 0].mean(),
            flagged[y_true == 1].mean(),
            "o",
            color=ax.lines[-1].get_color(),
        )
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(
        xlabel="1 - specificity",
        ylabel="sensitivity",
        title=f"ROC (dots: threshold {threshold:.3f}, {threshold_origin})",
    )
    ax.legend(loc="lower right")
    save_figure(fig, out_dir / "roc.png", tensorboard_dir, "roc")


def plot_precision_recall(curves: Curves, out_dir: Path, tensorboard_dir: Path | None) -> None:
    """precision_recall.png: each split's precision-recall curve with its average precision; a split
    without positives is left out."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for split, (y_true, scores) in curves.items():
        if not np.any(y_true == 1):
            continue
        precision, recall, _ = skm.precision_recall_curve(y_true, scores)
        ax.plot(
            recall,
            precision,
            label=f"{split} (AP {skm.average_precision_score(y_true, scores):.3f})",
        )
    ax.set(
        xlabel="recall (sensitivity)", ylabel="precision", title="precision-recall", ylim=(0, 1.02)
    )
    ax.legend(loc="lower left")
    save_figure(fig, out_dir / "precision_recall.png", tensorboard_dir, "precision_recall")


def plot_reliability(
    curves: Curves, out_dir: Path, tensorboard_dir: Path | None, bins: int = 10
) -> None:
    """reliability.png: observed share of positives against mean score in `bins` equal-width bins
    per split, beside the diagonal of perfect calibration."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for split, (y_true, scores) in curves.items():
        observed, predicted = calibration_curve(y_true, scores, n_bins=bins, strategy="uniform")
        ax.plot(predicted, observed, "o-", label=split)
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed fraction positive",
        title="reliability diagram",
    )
    ax.legend(loc="upper left")
    save_figure(fig, out_dir / "reliability.png", tensorboard_dir, "reliability")


def plot_score_histograms(
    curves: Curves,
    class_names: list[str],
    threshold: float,
    out_dir: Path,
    tensorboard_dir: Path | None,
) -> None:
    """score_histograms.png: per split, the scores of each true class, with the threshold marked:
    how well the classes separate and where the cut falls."""
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.5), squeeze=False)
    for ax, (split, (y_true, scores)) in zip(axes[0], curves.items()):
        for label, name in enumerate(class_names):
            ax.hist(scores[y_true == label], bins=25, range=(0, 1), alpha=0.6, label=name)
        ax.axvline(threshold, color="black", linestyle="--", label="threshold")
        ax.set(title=f"scores by true class ({split})", xlabel="score", ylabel="images")
        ax.legend()
    save_figure(fig, out_dir / "score_histograms.png", tensorboard_dir, "score_histograms")


def plot_confusion(
    matrix: list[list[int]],
    class_names: list[str],
    split: str,
    out_dir: Path,
    tensorboard_dir: Path | None,
) -> None:
    """confusion_matrix_<split>.png: the confusion matrix as counts and as rates of each true class
    (rows), shaded by rate."""
    counts = np.asarray(matrix)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        ax.text(
            j,
            i,
            f"{count}\n{rates[i, j]:.0%}",
            ha="center",
            va="center",
            color="white" if rates[i, j] > 0.5 else "black",
        )
    ax.set(
        xticks=range(len(class_names)),
        yticks=range(len(class_names)),
        xticklabels=class_names,
        yticklabels=class_names,
        xlabel="predicted",
        ylabel="true",
        title=f"confusion matrix ({split}): counts and row rates",
    )
    save_figure(
        fig, out_dir / f"confusion_matrix_{split}.png", tensorboard_dir, f"confusion_matrix_{split}"
    )


def plot_class_balance(examples: pd.DataFrame, out_dir: Path, tensorboard_dir: Path | None) -> None:
    """class_balance.png: images per split and class in examples.csv."""
    table = examples.groupby(["split", "label"]).size().unstack(fill_value=0)
    table = table.reindex([s for s in SPLITS if s in table.index])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    plot_split_counts(ax, table, "images per split and class", "images")
    save_figure(fig, out_dir / "class_balance.png", tensorboard_dir, "class_balance")


def plot_gallery(
    images: np.ndarray,
    captions: list[str],
    title: str,
    png_name: str,
    out_dir: Path,
    tensorboard_dir: Path | None,
    columns: int = 6,
) -> None:
    """A grid of grayscale images (n, h, w, 1) with one caption each."""
    rows = max(1, int(np.ceil(len(images) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.5 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, caption in zip(axes.ravel(), images, captions):
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
        ax.set_title(caption, fontsize=8)
    if not len(images):
        axes[0, 0].text(0.5, 0.5, "none", ha="center", va="center")
    fig.suptitle(title)
    save_figure(fig, out_dir / png_name, tensorboard_dir, Path(png_name).stem)


def plot_shift(
    reference_scores: np.ndarray,
    new_scores: np.ndarray,
    threshold: float | None,
    report: dict,
    out_dir: Path,
    tensorboard_dir: Path | None,
) -> None:
    """The shift report's picture: the training run's validation scores against these
    images' (left), and each folder's intensity histogram (right)."""
    fig, (scores_ax, pixels_ax) = plt.subplots(1, 2, figsize=(10, 4))
    bins = np.linspace(0.0, 1.0, 26)
    for name, values in (
        ("training run's validation", reference_scores),
        ("these images", new_scores),
    ):
        scores_ax.hist(values, bins=bins, density=True, histtype="step", linewidth=2, label=name)
    if threshold is not None:
        scores_ax.axvline(
            threshold, color="grey", linestyle="--", label=f"threshold {threshold:.3f}"
        )
    scores_ax.set(xlabel="pneumonia score", ylabel="density", title="scores")
    scores_ax.legend(fontsize=8)
    for folder, values in report["folders"].items():
        histogram = np.asarray(values["intensity_histogram"])
        centres = (np.arange(len(histogram)) + 0.5) * 256 / len(histogram)
        style = "--" if values["side"] == "reference" else "-"
        pixels_ax.plot(centres, histogram, style, label=f"{values['side']}: {Path(folder).name}")
    pixels_ax.set(
        xlabel="pixel intensity", ylabel="share of pixels", title="intensities per folder"
    )
    pixels_ax.legend(fontsize=7)
    verdict = "drift detected" if report["drift_detected"] else "no drift detected"
    fig.suptitle(f"shift from the training run's validation images: {verdict}")
    save_figure(fig, out_dir / "shift.png", tensorboard_dir, "shift")


def plot_finding_rocs(
    y_true: np.ndarray,
    scores: np.ndarray,
    findings: list[str],
    evaluable: list[str],
    split: str,
    out_dir: Path,
    tensorboard_dir: Path | None,
) -> None:
    """One ROC curve per evaluable finding of a multi-label split (roc_per_finding.png)."""
    fig, ax = plt.subplots(figsize=(6, 6))
    for j, name in enumerate(findings):
        if name in evaluable:
            fpr, tpr, _ = skm.roc_curve(y_true[:, j], scores[:, j])
            auc = skm.roc_auc_score(y_true[:, j], scores[:, j])
            ax.plot(fpr, tpr, label=f"{name} ({auc:.2f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=f"ROC per finding ({split})")
    if evaluable:
        ax.legend(loc="lower right", fontsize=7)
    save_figure(fig, out_dir / "roc_per_finding.png", tensorboard_dir, "roc_per_finding")
