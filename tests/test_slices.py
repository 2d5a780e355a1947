"""Patient-level intervals and the Evaluator's slices (metrics.json "slices")."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from components.clinical_metrics import (
    binary_metrics,
    bootstrap_binary_cis,
    patient_bootstrap_cis,
    slice_metrics,
)


def clustered_predictions(seed: int = 0, patients: int = 120, images_each: int = 5):
    """Patients with several images whose scores share most of their error."""
    rng = np.random.default_rng(seed)
    patient = np.repeat(np.arange(patients), images_each)
    label = rng.integers(0, 2, patients)[patient]
    shared = rng.normal(0.0, 0.2, patients)[patient]
    scores = np.clip(0.35 + 0.3 * label + shared + rng.normal(0, 0.03, len(patient)), 0, 1)
    return label, scores, patient


def test_patient_interval_is_wider_than_the_image_interval_for_correlated_images():
    y, scores, patients = clustered_predictions()
    by_patient = patient_bootstrap_cis(y, scores, 0.5, patients, resamples=1000, seed=1)
    by_image = bootstrap_binary_cis(y, scores, 0.5, resamples=1000, seed=1)
    for key in ("auc_ci95", "sensitivity_ci95", "specificity_ci95"):
        width_patient = by_patient[key][1] - by_patient[key][0]
        width_image = by_image[key][1] - by_image[key][0]
        assert width_patient > 1.5 * width_image, key


def test_patient_bootstrap_equals_a_scikit_learn_loop_over_the_same_draws():
    y, scores, patients = clustered_predictions(seed=2, patients=40, images_each=3)
    scores = np.round(scores, 2)  # ties, which the weighted rank statistic must handle
    fast = patient_bootstrap_cis(y, scores, 0.5, patients, resamples=200, seed=7)
    draws = np.random.default_rng(7).multinomial(40, np.full(40, 1 / 40), size=200)
    _, patient_order = np.unique(patients.astype(str), return_inverse=True)  # as drawn
    aucs, specs = [], []
    for counts in draws:
        idx = np.concatenate(
            [np.repeat(np.flatnonzero(patient_order == p), c) for p, c in enumerate(counts)]
        )
        aucs.append(skm.roc_auc_score(y[idx], scores[idx]))
        specs.append(skm.recall_score(y[idx], scores[idx] >= 0.5, pos_label=0))
    assert fast["auc_ci95"] == pytest.approx(list(np.percentile(aucs, [2.5, 97.5])), abs=1e-12)
    assert fast["specificity_ci95"] == pytest.approx(
        list(np.percentile(specs, [2.5, 97.5])), abs=1e-12
    )


def test_singleton_patients_give_the_image_level_interval_in_distribution():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 600)
    scores = np.clip(0.3 * y + rng.normal(0.35, 0.2, 600), 0, 1)
    by_patient = patient_bootstrap_cis(y, scores, 0.5, np.arange(600), resamples=2000, seed=0)
    by_image = bootstrap_binary_cis(y, scores, 0.5, resamples=2000, seed=0)
    assert by_patient["auc_ci95"] == pytest.approx(by_image["auc_ci95"], abs=0.01)


def test_slices_add_up_to_the_whole():
    y, scores, patients = clustered_predictions(seed=4)
    rng = np.random.default_rng(4)
    batch = np.where(y == 1, "person", rng.choice(["IM", "NORMAL2"], len(y)))
    pathogen = np.where(y == 1, rng.choice(["bacteria", "virus"], len(y)), "normal")
    source = rng.choice(["held_out_from_train", "official_val"], len(y))
    whole = binary_metrics(y, scores, 0.5, resamples=0)
    slices = slice_metrics(
        y,
        scores,
        0.5,
        patients,
        {"batch": batch, "pathogen": pathogen, "source": source},
        resamples=100,
    )
    for column in ("batch", "pathogen", "source"):
        parts = [v for k, v in slices.items() if k.startswith(column + "=")]
        assert sum(p["n"] for p in parts) == whole["n"]
        assert (
            np.sum([p["confusion_matrix"] for p in parts], axis=0).tolist()
            == whole["confusion_matrix"]
        )
    normals = slices["batch=NORMAL2"]
    assert normals["sensitivity"] is None and normals["auc"] is None
    assert (
        normals["specificity_ci95"][0] <= normals["specificity"] <= normals["specificity_ci95"][1]
    )
    assert slices["source=official_val"]["auc"] is not None
