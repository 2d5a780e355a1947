"""Per-finding metrics of a multi-label model (one sigmoid per finding), from labels and scores.

scikit-learn computes the figures (roc_auc_score, average_precision_score) and
components/clinical_metrics.py the thresholds and the patient-level bootstrap of AUC,
sensitivity and specificity; what is ours is the per-finding bookkeeping (which findings
have enough positives in a split to be given a number at all), and the patient bootstrap
of average precision, which neither has.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn import metrics as skm

from components.clinical_metrics import (
    patient_bootstrap_cis,
    patient_draw_weights,
    percentile_intervals,
    sensitivity,
    specificity,
    youden_threshold,
)

# Fewer positives (or negatives) than this in a split: the finding gets no AUC, average
# precision, sensitivity or specificity there, only its counts and the reason. With 4
# positives an AUC moves by 0.25 when one of them changes rank.
MIN_POSITIVES = 5
# Nor with the positives (or negatives) from fewer patients than this: on nih_sample's
# test split one patient held all 26 Effusion images, and such a figure tells that
# patient's images from the others', not the finding (its patient bootstrap collapses).
MIN_PATIENTS = 3


def choose_finding_thresholds(
    y_val: np.ndarray, val_scores: np.ndarray, findings: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """One threshold per finding, chosen on validation only by Youden's J; a finding
    without both classes on val keeps 0.5 and says so (its rule records why)."""
    chosen: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(findings):
        y, s = y_val[:, j], val_scores[:, j]
        positives = int(y.sum())
        if 0 < positives < len(y):
            chosen[name] = {
                "threshold": float(youden_threshold(y, s)),
                "rule": "youden_on_val",
                "val_positives": positives,
            }
        else:
            chosen[name] = {
                "threshold": 0.5,
                "rule": "default_0.5 (validation has no positive or no negative)",
                "val_positives": positives,
            }
    return chosen


def patient_average_precision_ci(
    y_true: np.ndarray,
    scores: np.ndarray,
    patients: np.ndarray,
    resamples: int,
    seed: int,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """{"average_precision_ci95": [low, high]} resampling patients (the same draws as
    clinical_metrics.patient_bootstrap_cis for this seed).

    Each resample weighs an image by how often its patient was drawn; average precision
    is scikit-learn's step formula sum_k (R_k - R_(k-1)) P_k over the distinct scores,
    with weighted counts, for all resamples at once (a scikit-learn call per resample and
    finding would cost tens of seconds per run). tests/test_multilabel.py checks it
    against average_precision_score(sample_weight=...).
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=float)
    weights = patient_draw_weights(patients, resamples, seed)
    order = np.argsort(-s, kind="stable")
    s, y, weights = s[order], y[order], weights[:, order]
    last_of_tie = np.r_[np.diff(s) != 0, True]  # a cut between distinct scores only
    true_positives = np.cumsum(weights * y, axis=1)[:, last_of_tie]
    flagged = np.cumsum(weights, axis=1)[:, last_of_tie]
    positives = true_positives[:, -1:]
    valid = (positives[:, 0] > 0) & (flagged[:, -1] > positives[:, 0])
    if not valid.any():
        return {}
    true_positives, flagged, positives = true_positives[valid], flagged[valid], positives[valid]
    precision = np.divide(true_positives, flagged, out=np.zeros_like(flagged), where=flagged > 0)
    recall = true_positives / positives
    steps = np.diff(np.c_[np.zeros(len(recall)), recall], axis=1)
    return percentile_intervals({"average_precision": (steps * precision).sum(axis=1)}, level)


def finding_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    patients: np.ndarray,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    """One finding in one split: counts, and, with MIN_POSITIVES images of each class
    from MIN_PATIENTS patients each, AUC, average precision, sensitivity and specificity
    at `threshold`, each with its patient-level 95% interval; otherwise `evaluable`
    False and the reason."""
    y = np.asarray(y_true).astype(int)
    s = np.asarray(scores, dtype=float)
    patients = np.asarray(patients).astype(str)
    n_positive, n_negative = int(y.sum()), int(len(y) - y.sum())
    result: dict[str, Any] = {
        "n": int(len(y)),
        "n_positive": n_positive,
        "n_negative": n_negative,
        "n_positive_patients": int(len(np.unique(patients[y == 1]))),
        "n_negative_patients": int(len(np.unique(patients[y == 0]))),
        "threshold": float(threshold),
    }
    short = [
        f"too few {kind} ({count} < {MIN_POSITIVES})"
        for kind, count in (("positives", n_positive), ("negatives", n_negative))
        if count < MIN_POSITIVES
    ] or [
        f"{kind} from too few patients ({count} < {MIN_PATIENTS})"
        for kind, count in (
            ("positives", result["n_positive_patients"]),
            ("negatives", result["n_negative_patients"]),
        )
        if count < MIN_PATIENTS
    ]
    if short:
        return {**result, "evaluable": False, "reason": "; ".join(short)}
    flagged = (s >= threshold).astype(int)
    result.update(
        evaluable=True,
        auc=float(skm.roc_auc_score(y, s)),
        average_precision=float(skm.average_precision_score(y, s)),
        sensitivity=sensitivity(y, flagged),
        specificity=specificity(y, flagged),
    )
    if resamples > 0:
        result.update(patient_bootstrap_cis(y, s, threshold, patients, resamples, seed))
        result.update(patient_average_precision_ci(y, s, patients, resamples, seed))
    return result


def multilabel_split_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    thresholds: dict[str, float],
    findings: Sequence[str],
    patients: np.ndarray,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """A split's metrics.json entry: `per_finding` (finding_metrics of each), and the macro
    (mean of the per-finding AUCs) and micro (all image-finding pairs pooled) AUC over
    the evaluable findings, which `evaluable_findings` names."""
    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(scores, dtype=float)
    per_finding = {
        name: finding_metrics(
            y_true[:, j], scores[:, j], thresholds[name], patients, resamples, seed
        )
        for j, name in enumerate(findings)
    }
    evaluable = [j for j, name in enumerate(findings) if per_finding[name]["evaluable"]]
    result: dict[str, Any] = {
        "n": int(len(y_true)),
        "per_finding": per_finding,
        "evaluable_findings": [findings[j] for j in evaluable],
        "macro_auc": None,
        "micro_auc": None,
    }
    if evaluable:
        result["macro_auc"] = float(
            skm.roc_auc_score(y_true[:, evaluable], scores[:, evaluable], average="macro")
        )
        result["micro_auc"] = float(
            skm.roc_auc_score(y_true[:, evaluable], scores[:, evaluable], average="micro")
        )
    return result
