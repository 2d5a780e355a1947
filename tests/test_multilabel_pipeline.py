"""--task multilabel end to end, on the shared `multilabel_run` (multi-label phantoms with
per-finding lesion masks): metrics.json per finding, maps per finding that point at their
own finding's lesion, pipelines.evaluate at the frozen per-finding thresholds, predict,
and the serving export. (An unknown finding's one-line refusal: tests/test_multilabel.py.)"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from components.artifacts import read_json
from datasets.synthetic_cxr.multilabel import write_multilabel_folder
from datasets.synthetic_cxr.phantom import MULTILABEL_FINDINGS
from tests.support.runs import predict_into, run_module
from tests.support.tensorboard_events import image_tags

FINDING_KEYS = {"n", "n_positive", "auc", "average_precision", "sensitivity", "specificity"}


@pytest.fixture(scope="module")
def external(tmp_path_factory):
    """Another NIH-style CSV: 60 phantoms the model never saw (another seed)."""
    return write_multilabel_folder(tmp_path_factory.mktemp("external"), 60, size=64, seed=9)


def test_metrics_json_has_each_finding_with_intervals_and_its_threshold(multilabel_run):
    metrics = read_json(multilabel_run.run_dir / "evaluator" / "metrics.json")
    assert metrics["findings"] == list(MULTILABEL_FINDINGS)
    assert set(metrics["thresholds"]) == set(MULTILABEL_FINDINGS)
    assert metrics["threshold_rule"] == "youden_on_val per finding"
    for split in ("val", "test"):
        for name, values in metrics[split]["per_finding"].items():
            assert values["evaluable"], (name, values)
            assert FINDING_KEYS <= set(values) and "auc_ci95" in values
            assert values["threshold"] == metrics["thresholds"][name]
        assert 0.5 < metrics[split]["macro_auc"] <= 1 and 0.5 < metrics[split]["micro_auc"] <= 1
    predictions = pd.read_csv(multilabel_run.run_dir / "evaluator" / "predictions.csv")
    assert {f"score_{name}" for name in MULTILABEL_FINDINGS} <= set(predictions)
    card = (multilabel_run.run_dir / "model_card.md").read_text()
    assert "multi-label" in card and "| Nodule |" in card
    assert "macro AUC" in multilabel_run.result.stdout


def test_each_findings_maps_point_at_its_own_lesion_above_chance(multilabel_run):
    localization = read_json(multilabel_run.run_dir / "explainer" / "localization.json")
    by_finding = localization["integrated_gradients"]
    assert set(by_finding) == set(MULTILABEL_FINDINGS)
    for name, report in by_finding.items():
        chance = report["chance"]
        assert report["n_counted"] >= 5, name
        assert report["pointing_game"] > 2 * chance["random_map"]["pointing_game"], (name, report)
        assert report["mean_mass_inside"] > 2 * chance["mask_area_fraction"], (name, report)


def test_overlays_are_named_by_finding_and_logged_per_finding(multilabel_run):
    run_dir = multilabel_run.run_dir
    cases = read_json(run_dir / "explainer" / "cases.json")
    assert len({c["path"] for c in cases}) >= 2
    for case in cases:
        assert case["name"].endswith(f"_{case['finding']}")
        assert (run_dir / "explainer" / "integrated_gradients" / f"{case['name']}.png").is_file()
    tags = image_tags(run_dir / "tensorboard")
    for finding in {c["finding"] for c in cases}:
        assert any(tag.endswith(f"integrated_gradients/{finding}") for tag in tags), tags


def test_evaluate_scores_another_csv_at_the_frozen_per_finding_thresholds(
    multilabel_run, external, tmp_path
):
    model = multilabel_run.run_dir / "trainer" / "model.keras"
    args = ("--model", str(model), "--csv", str(external), "--bootstrap", "50", "--quiet")
    result = run_module("pipelines.evaluate", *args, "--run_dir", str(tmp_path / "eval"))
    assert result.returncode == 0, result.stderr[-3000:]
    trained = read_json(multilabel_run.run_dir / "evaluator" / "metrics.json")
    metrics = read_json(tmp_path / "eval" / "evaluator" / "metrics.json")
    assert metrics["threshold_rule"] == "frozen"
    assert metrics["thresholds"] == trained["thresholds"]
    assert "val" not in metrics and metrics["test"]["n"] == 60
    assert set(metrics["test"]["per_finding"]) == set(MULTILABEL_FINDINGS)
    assert "drift_detected" in read_json(tmp_path / "eval" / "evaluator" / "shift.json")


def test_predict_labels_each_image_with_its_findings(multilabel_run, external, tmp_path):
    images = sorted((external.parent / "images").iterdir())[:3]
    result = predict_into(multilabel_run.run_dir, tmp_path / "out", *map(str, images))
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(tmp_path / "out" / "predictions.csv", keep_default_na=False)
    thresholds = read_json(multilabel_run.run_dir / "evaluator" / "metrics.json")["thresholds"]
    for row in table.to_dict(orient="records"):
        present = [n for n in MULTILABEL_FINDINGS if row[f"score_{n}"] >= thresholds[n]]
        assert row["label"] == ("|".join(present) or "No Finding")
        assert row["explained_finding"] in MULTILABEL_FINDINGS


def test_the_serving_export_gives_a_score_and_label_per_finding(multilabel_run, external):
    import tensorflow as tf

    run_dir = multilabel_run.run_dir
    serving = tf.saved_model.load(str(run_dir / "export" / "serving"))
    paths = sorted((external.parent / "images").iterdir())[:3]
    served = serving.signatures["serving_default"](
        images=tf.constant([p.read_bytes() for p in paths])
    )
    described = json.loads((run_dir / "export" / "serving.json").read_text())
    assert served["score"].shape == (3, len(MULTILABEL_FINDINGS))
    labels = served["label"].numpy().astype(str)
    cut = np.array([described["thresholds"][n] for n in described["class_names"]])
    np.testing.assert_array_equal(labels == "present", served["score"].numpy() >= cut)
    for row, joined in zip(labels, served["findings"].numpy().astype(str)):
        names = [n for n, label in zip(described["class_names"], row) if label == "present"]
        assert joined == ("|".join(names) or "No Finding")
