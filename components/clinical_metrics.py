"""Binary clinical metrics from labels and scores, with bootstrap confidence intervals.

scikit-learn computes every metric; what is ours is only the clinical naming
(sensitivity, specificity), expected calibration error (not in scikit-learn) and the
seeded bootstrap around them.
"""

from __future__ import annotations

from typing import Callable

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
    return float(skm.recall_score(y_true, y_pred, pos_label=1, zero_division=0))


def specificity(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(skm.recall_score(y_true, y_pred, pos_label=0, zero_division=0))


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
) -> dict[str, object]:
    """The metrics.json keys of one split (docs/ARCHITECTURE.md), at a fixed threshold."""
    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(scores, dtype=float)
    y_pred = (scores >= threshold).astype(int)
    result: dict[str, object] = {
        "n": int(len(y_true)),
        "positives": int(y_true.sum()),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
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
    tail = (1.0 - level) / 2.0 * 100.0
    return {
        f"{name}_ci95": [float(v) for v in np.percentile(values, [tail, 100.0 - tail])]
        for name, values in (("auc", auc), ("sensitivity", sens), ("specificity", spec))
    }


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
