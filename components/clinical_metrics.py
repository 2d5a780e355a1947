"""Binary clinical metrics from labels and scores, with bootstrap confidence intervals.

scikit-learn computes every metric; what is ours is only the clinical naming
(sensitivity, specificity), expected calibration error (not in scikit-learn) and the
seeded bootstrap around them.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from sklearn import metrics as skm


def expected_calibration_error(y_true: np.ndarray, scores: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean score| over equal-width score bins, weighted by bin size."""
    y_true = np.asarray(y_true, dtype=float)
    scores = np.asarray(scores, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    observed = np.bincount(which, weights=y_true, minlength=bins)
    predicted = np.bincount(which, weights=scores, minlength=bins)
    filled = counts > 0
    gaps = np.abs(observed[filled] - predicted[filled]) / counts[filled]
    return float(np.sum(gaps * counts[filled]) / max(len(scores), 1))


def sensitivity(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The share of positives (label 1) predicted positive (recall); 0 when there are none."""
    return float(skm.recall_score(y_true, y_pred, pos_label=1, zero_division=0))


def specificity(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The share of negatives (label 0) predicted negative; 0 when there are none."""
    return float(skm.recall_score(y_true, y_pred, pos_label=0, zero_division=0))


def balanced_accuracy(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[int] = (0, 1)
) -> float:
    """Mean recall over the classes `y_true` holds: scikit-learn's balanced_accuracy_score,
    whose confusion matrix, built without `labels`, warns on every one-class slice (and
    the bootstrap draws many); with `labels` it keeps its shape and says nothing."""
    matrix = skm.confusion_matrix(y_true, y_pred, labels=list(labels))
    totals = matrix.sum(axis=1)
    present = totals > 0
    if not present.any():
        return float("nan")
    return float(np.mean(np.diag(matrix)[present] / totals[present]))


def _safe_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    return float(skm.roc_auc_score(y_true, scores)) if len(np.unique(y_true)) == 2 else float("nan")


def _safe_pr_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    return (
        float(skm.average_precision_score(y_true, scores)) if np.any(y_true == 1) else float("nan")
    )


def bootstrap_ci(
    y_true: np.ndarray,
    scores: np.ndarray,
    statistic: Callable[[np.ndarray, np.ndarray], float],
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> list[float]:
    """Percentile bootstrap interval of `statistic(y_true, scores)` over seeded resamples.

    Resamples missing a class (where AUC is undefined) are dropped.
    """
    y_true = np.asarray(y_true)
    scores = np.asarray(scores)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        idx = rng.integers(0, len(y_true), len(y_true))
        if len(np.unique(y_true[idx])) < 2:
            continue
        values.append(statistic(y_true[idx], scores[idx]))
    if not values:
        return [float("nan"), float("nan")]
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.nanpercentile(values, [tail, 100.0 - tail])
    return [float(low), float(high)]


def binary_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    resamples: int = 1000,
    seed: int = 0,
    patients: np.ndarray | None = None,
) -> dict[str, object]:
    """The metrics.json keys of one split (docs/ARCHITECTURE.md), at a fixed threshold.

    With `patients` (one id per image) the intervals resample patients, not images.
    """
    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(scores, dtype=float)
    y_pred = (scores >= threshold).astype(int)
    result: dict[str, object] = {
        "n": int(len(y_true)),
        "positives": int(y_true.sum()),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred),
        "auc": _safe_auc(y_true, scores),
        "sensitivity": sensitivity(y_true, y_pred),
        "specificity": specificity(y_true, y_pred),
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0)),
        "pr_auc": _safe_pr_auc(y_true, scores),
        "brier": float(skm.brier_score_loss(y_true, scores)) if len(y_true) else float("nan"),
        "ece": expected_calibration_error(y_true, scores),
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).tolist(),
    }
    if resamples > 0 and len(np.unique(y_true)) == 2:
        if patients is not None:
            result.update(
                patient_bootstrap_cis(y_true, scores, threshold, patients, resamples, seed)
            )
        else:
            result.update(bootstrap_binary_cis(y_true, scores, threshold, resamples, seed))
    return result


def bootstrap_binary_cis(
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """Percentile bootstrap 95% intervals of AUC, sensitivity and specificity, vectorized.

    All resamples at once as an index matrix: AUC by the Mann-Whitney rank formula
    (scipy's rankdata along rows handles ties), sensitivity and specificity by counting.
    One call to scikit-learn per resample would cost seconds per split.
    """
    from scipy.stats import rankdata

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y_true), (resamples, len(y_true)))
    y = np.asarray(y_true)[idx].astype(bool)
    s = np.asarray(scores, dtype=float)[idx]
    n_pos = y.sum(axis=1)
    n_neg = y.shape[1] - n_pos
    valid = (n_pos > 0) & (n_neg > 0)
    y, s, n_pos, n_neg = y[valid], s[valid], n_pos[valid], n_neg[valid]
    ranks = rankdata(s, axis=1)
    auc = ((ranks * y).sum(axis=1) - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    flagged = s >= threshold
    sens = (flagged & y).sum(axis=1) / n_pos
    spec = (~flagged & ~y).sum(axis=1) / n_neg
    return percentile_intervals({"auc": auc, "sensitivity": sens, "specificity": spec}, level)


def percentile_intervals(
    resampled: dict[str, np.ndarray], level: float = 0.95
) -> dict[str, list[float]]:
    """{"<name>_ci95": [low, high]}: the percentile interval of each resampled statistic."""
    tail = (1.0 - level) / 2.0 * 100.0
    return {
        f"{name}_ci95": [float(v) for v in np.percentile(values, [tail, 100.0 - tail])]
        for name, values in resampled.items()
    }


def patient_draw_weights(patients: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(resamples, images): how often each image's patient was drawn, patients drawn with
    replacement as many times as there are patients (a cluster bootstrap)."""
    _, patient_index = np.unique(np.asarray(patients).astype(str), return_inverse=True)
    n_patients = int(patient_index.max()) + 1 if len(patient_index) else 0
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(
        n_patients, np.full(n_patients, 1.0 / max(n_patients, 1)), size=resamples
    )
    return draws[:, patient_index].astype(float)


def patient_bootstrap_cis(
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    patients: np.ndarray,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """Percentile 95% intervals of AUC, sensitivity and specificity resampling patients.

    Images of one patient are correlated (the same chest, often the same day), so the
    bootstrap draws patients with replacement and takes all of a drawn patient's images:
    each resample is a weight per image (how often its patient was drawn). AUC is the
    weighted Mann-Whitney statistic over score-sorted groups of tied scores, all
    resamples at once; scikit-learn has no cluster bootstrap.
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=float)
    weights = patient_draw_weights(patients, resamples, seed)
    order = np.argsort(s, kind="stable")
    s, y, weights = s[order], y[order], weights[:, order]
    starts = np.flatnonzero(np.r_[True, np.diff(s) > 0])  # first image of each tie group
    group = np.cumsum(np.r_[True, np.diff(s) > 0]) - 1
    negatives_per_group = np.add.reduceat(weights * ~y, starts, axis=1)
    below = np.cumsum(negatives_per_group, axis=1) - negatives_per_group
    credit = below[:, group] + 0.5 * negatives_per_group[:, group]
    w_pos = (weights * y).sum(axis=1)
    w_neg = (weights * ~y).sum(axis=1)
    valid = (w_pos > 0) & (w_neg > 0)
    auc = (weights * y * credit).sum(axis=1)[valid] / (w_pos * w_neg)[valid]
    flagged = s >= threshold
    sens = (weights * (y & flagged)).sum(axis=1)[valid] / w_pos[valid]
    spec = (weights * (~y & ~flagged)).sum(axis=1)[valid] / w_neg[valid]
    if not valid.any():
        return {}
    return percentile_intervals({"auc": auc, "sensitivity": sens, "specificity": spec}, level)


def slice_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    patients: np.ndarray,
    slice_columns: dict[str, np.ndarray],
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, object]]:
    """Metrics per value of each slicing column ("batch=NORMAL2": {...}), as TFMA slices.

    A slice holding one class has no AUC and only the rate of that class (sensitivity
    for positives, specificity for normals); the others are None rather than a
    misleading 0. Intervals resample the slice's patients.
    """
    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(scores, dtype=float)
    patients = np.asarray(patients)
    result: dict[str, dict[str, object]] = {}
    for column, values in slice_columns.items():
        values = np.asarray(values).astype(str)
        for value in sorted(set(values) - {""}):
            part = values == value
            y, s = y_true[part], scores[part]
            metrics = binary_metrics(y, s, threshold, resamples, seed, patients[part])
            has_positives, has_negatives = bool(y.any()), bool((y == 0).any())
            for key, defined in (
                ("sensitivity", has_positives),
                ("specificity", has_negatives),
                ("precision", has_positives),
                ("f1", has_positives),
                ("pr_auc", has_positives),
            ):
                if not defined:
                    metrics[key] = None
            if not (has_positives and has_negatives):
                metrics["auc"] = metrics["balanced_accuracy"] = None
                metrics.update(
                    _one_class_interval(
                        y, s, threshold, patients[part], resamples, seed, has_positives
                    )
                )
            metrics["mean_score"] = float(s.mean())
            result[f"{column}={value}"] = metrics
    return result


def _one_class_interval(
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    patients: np.ndarray,
    resamples: int,
    seed: int,
    positives: bool,
) -> dict[str, list[float]]:
    """The patient-resampled interval of the one rate a single-class slice has."""
    if resamples <= 0 or not len(y):
        return {}
    correct = (scores >= threshold) if positives else (scores < threshold)
    weights = patient_draw_weights(patients, resamples, seed)
    rates = (weights * correct).sum(axis=1) / weights.sum(axis=1)
    return percentile_intervals({"sensitivity" if positives else "specificity": rates})


def youden_threshold(y_true: np.ndarray, scores: np.ndarray) -> float:
    """The score cut maximizing sensitivity + specificity - 1 (Youden's J) on ROC points.

    Any cut between the lowest score flagged at the best ROC point and the next lower
    score classifies the validation images alike; we take the midpoint of that gap, not
    its edge, so a test image scoring a little off the validation scores (another
    hospital's exposure, a shifted class mix) is not decided by where one validation
    positive happened to fall.
    """
    y_true = np.asarray(y_true).astype(int)
    if len(np.unique(y_true)) < 2:
        return 0.5
    fpr, tpr, thresholds = skm.roc_curve(y_true, scores, drop_intermediate=False)
    best = int(np.argmax(tpr - fpr))
    # roc_curve's first threshold is +inf (nothing predicted positive); keep it finite.
    upper = min(float(thresholds[best]), 1.0)
    lower = float(thresholds[best + 1]) if best + 1 < len(thresholds) else upper
    return (upper + lower) / 2.0
