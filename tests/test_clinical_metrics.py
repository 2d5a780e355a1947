"""Clinical metrics checked against scikit-learn and known answers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from components.clinical_metrics import (
    binary_metrics,
    bootstrap_ci,
    expected_calibration_error,
    slice_metrics,
    youden_threshold,
)


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    scores = np.clip(0.35 * y + rng.normal(0.35, 0.2, 400), 0, 1)
    return y, scores


def test_binary_metrics_match_scikit_learn(predictions):
    y, scores = predictions
    m = binary_metrics(y, scores, threshold=0.5, resamples=200, seed=0)
    pred = scores >= 0.5
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, scores))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, scores))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["sensitivity"] == pytest.approx(tp / (tp + fn))
    assert m["specificity"] == pytest.approx(tn / (tn + fp))
    assert m["precision"] == pytest.approx(tp / (tp + fp))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, scores))
    assert m["confusion_matrix"] == [[tn, fp], [fn, tp]]
    low, high = m["auc_ci95"]
    assert low < m["auc"] < high


def test_bootstrap_interval_covers_the_known_mean():
    # The statistic is the mean score; its 95% interval must cover the true mean about
    # 95% of the time across independent samples.
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(100):
        scores = rng.normal(0.5, 0.1, 200)
        y = np.arange(200) % 2
        low, high = bootstrap_ci(
            y, scores, lambda t, s: float(np.mean(s)), resamples=300, seed=trial
        )
        covered += low <= 0.5 <= high
    assert 88 <= covered <= 100


def test_youden_threshold_separates_perfectly_separable_scores():
    y = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    threshold = youden_threshold(y, scores)
    assert threshold == pytest.approx(0.45)  # the middle of the gap, not its edge
    assert binary_metrics(y, scores, threshold, resamples=0)["accuracy"] == 1.0
    # With overlap: J is best flagging the top four (sensitivity 1, specificity 3/4, J 0.75
    # against 0.67 for the top two); the cut falls midway between the lowest flagged score
    # (0.4) and the next one (0.35).
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.35, 0.5, 0.4, 0.7, 0.9])
    assert youden_threshold(y, scores) == pytest.approx(0.375)


def test_ece_is_zero_for_calibrated_bins_and_large_for_overconfidence():
    y = np.array([1] * 3 + [0] * 7)
    assert expected_calibration_error(y, np.full(10, 0.3)) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(10, 0.95)) == pytest.approx(0.65)


def test_vectorized_bootstrap_matches_the_scikit_learn_loop(predictions):
    y, scores = predictions
    fast = binary_metrics(y, scores, 0.5, resamples=300, seed=3)
    slow = bootstrap_ci(y, scores, lambda t, s: skm.roc_auc_score(t, s), resamples=300, seed=3)
    assert fast["auc_ci95"] == pytest.approx(slow, abs=1e-9)
    slow_sens = bootstrap_ci(y, scores, lambda t, s: skm.recall_score(t, s >= 0.5), 300, seed=3)
    assert fast["sensitivity_ci95"] == pytest.approx(slow_sens, abs=1e-9)


def test_one_class_slices_and_splits_raise_no_warning():
    """The Evaluator's slices (batch, pathogen, source) often hold one class; scikit-learn
    warned "y_pred contains classes not in y_true" for each, a dozen lines a run."""
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 20)
    scores = rng.uniform(0, 1, 40)
    patients = np.arange(40) // 2
    batch = np.where(y == 1, "person", "IM")  # each slice one class, both predictions
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        slices = slice_metrics(y, scores, 0.5, patients, {"batch": batch}, resamples=50)
        normals = binary_metrics(y[:20], scores[:20], 0.5, resamples=50, patients=patients[:20])
        unanimous = binary_metrics(y[:20], np.zeros(20), 0.5)  # one class predicted too
    assert slices["batch=IM"]["specificity"] == pytest.approx(np.mean(scores[:20] < 0.5))
    assert slices["batch=IM"]["balanced_accuracy"] is None  # undefined for one class
    # For a whole one-class split, scikit-learn's figure: the recall of the class present.
    assert normals["balanced_accuracy"] == pytest.approx(np.mean(scores[:20] < 0.5))
    assert unanimous["balanced_accuracy"] == 1.0
