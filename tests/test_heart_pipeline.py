"""End to end: `python -m pipelines.heart` on the real table with few epochs.

Runs the CLI in a subprocess (as users do; absl flags are process-global).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def heart_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.heart", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def run_dir(heart_run) -> Path:
    """The session's heart run (tests/support/runs.py), shared with the browser checks."""
    run_dir, result = heart_run.run_dir, heart_run.result
    assert f"Run folder: {run_dir}" in result.stdout
    assert f"tensorboard --logdir {run_dir / 'tensorboard'} --host localhost" in result.stdout
    return run_dir


def test_metrics_are_keyed_by_model(run_dir) -> None:
    metrics = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    for model in ("lasso", "mlp", "nam"):
        test = metrics[model]["test"]
        assert {
            "auc",
            "accuracy",
            "balanced_accuracy",
            "f1",
            "sensitivity",
            "specificity",
            "auc_ci95",
            "f1_ci95",
            "sensitivity_ci95",
        } <= set(test)
        assert test["n"] == 184 and 0.5 < test["auc"] <= 1.0
        assert test["auc_ci95"][0] <= test["auc"] <= test["auc_ci95"][1]
        assert metrics[model]["threshold_rule"] == "youden_on_val"
    assert [row["model"] for row in metrics["comparison"]["table"]] == ["lasso", "mlp", "nam"]
    cv = metrics["cv"]
    assert cv["folds"] == 2
    assert len(cv["models"]["nam"]["auc"]["per_fold"]) == 2
    assert cv["models"]["lasso"]["auc"]["std"] >= 0


def test_run_folder_layout(run_dir) -> None:
    expected = [
        "pipeline.json",
        "example_gen/examples.csv",
        "example_gen/stats.json",
        "transform/holdout/preprocessor.skops",
        "transform/cv_1/transformed.csv",
        "eda/class_balance.png",
        "eda/missingness.png",
        "eda/correlations.png",
        "eda/numeric_by_class.png",
        "trainer/lasso/model.skops",
        "trainer/mlp/model.keras",
        "trainer/nam/model.keras",
        "trainer/mlp/history.csv",
        "trainer/nam/history.png",
        "trainer/cv_0/nam/model.keras",
        "evaluator/roc.png",
        "evaluator/report.html",
        "evaluator/predictions.csv",
        "explainer/mlp_shap_beeswarm.png",
        "explainer/mlp_shap_bar.png",
        "explainer/mlp_waterfall_borderline.png",
        "explainer/nam_shape_functions.png",
        "explainer/lasso_coefficients.png",
        "explainer/importance_cross_check.png",
        "explainer/report.html",
    ]
    missing = [name for name in expected if not (run_dir / name).is_file()]
    assert not missing
    pipeline = json.loads((run_dir / "pipeline.json").read_text())
    assert pipeline["status"] == "completed"
    assert pipeline["components"] == [
        "example_gen",
        "transform",
        "eda",
        "trainer",
        "evaluator",
        "explainer",
    ]
    for component in ("eda", "trainer", "evaluator", "explainer"):
        assert list((run_dir / "tensorboard" / component).rglob("events.out.tfevents*")), component
    report = (run_dir / "evaluator" / "report.html").read_text()
    assert "data:image/png;base64," in report and '<img src="http' not in report
    assert "correlations" in report  # the EDA figures are in the report


def test_explanations_add_up(run_dir) -> None:
    explanations = json.loads((run_dir / "explainer" / "explanations.json").read_text())
    for model in ("lasso", "mlp", "nam"):
        assert explanations[model]["additivity_max_abs_error"] < 1e-3
        assert set(explanations["importance"][model]) == set(explanations["importance"]["mlp"])
    predictions = pd.read_csv(run_dir / "evaluator" / "predictions.csv")
    assert set(predictions["partition"]) == {"holdout", "cv_0", "cv_1"}


def test_rerun_skips_completed_components(heart_run) -> None:
    run_dir = heart_run.run_dir
    result = heart_cli(*heart_run.args)
    assert result.returncode == 0, result.stderr[-3000:]
    pipeline = json.loads((run_dir / "pipeline.json").read_text())
    assert pipeline["skipped"] == pipeline["components"]


class Payload:
    """Pickles to a call that writes a marker file: what a planted model could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def test_a_planted_pickle_is_refused_with_one_line_and_runs_nothing(run_dir, tmp_path) -> None:
    """A run folder someone else made: a pickle where the Lasso model was is refused when
    the Evaluator loads it (the old joblib name and the preprocessor: test_heart_models)."""
    import pickle
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    target = copy / "trainer" / "lasso" / "model.skops"
    for existing in target.parent.glob(target.stem + ".*"):
        existing.unlink()
    marker = tmp_path / "marker.txt"
    target.write_bytes(pickle.dumps(Payload(marker)))
    (copy / "evaluator" / "metadata.json").unlink()  # the Evaluator reruns and loads it
    result = heart_cli(
        "--run_dir", str(copy), "--epochs", "3", "--cv", "2", "--seed", "7", "--quiet"
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and str(target) in lines[0] and "refusing" in lines[0], lines
    assert not marker.exists()


def test_bad_csv_exits_2_with_one_line(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("Age,Sex,HeartDisease\n50,M,1\n")
    result = heart_cli("--csv", str(bad), "--run_dir", str(tmp_path / "run"), "--quiet")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert lines == [
        f"error: {bad}: missing feature column(s) ChestPainType, RestingBP, "
        "Cholesterol, FastingBS, RestingECG, MaxHR, ExerciseAngina, Oldpeak, ST_Slope"
    ]
    assert "Traceback" not in result.stderr


def test_predict_scores_new_patients_like_the_evaluator(run_dir, tmp_path) -> None:
    """Test patients of the run as a new CSV (columns reordered, one bad value): the
    per-model risks equal the Evaluator's, NAM contributions add up to its logit."""
    import numpy as np

    examples = pd.read_csv(run_dir / "example_gen" / "examples.csv")
    test = examples[examples["split"] == "test"].head(5).reset_index(drop=True)
    features = [c for c in examples.columns if c not in ("patient_id", "label", "split")]
    patients = test[list(reversed(features))].astype(object)
    patients.loc[len(patients)] = patients.loc[0]
    patients.loc[len(patients) - 1, "Cholesterol"] = "high"  # CSV line 7
    csv = tmp_path / "patients.csv"
    patients.to_csv(csv, index=False)
    out = tmp_path / "predicted"
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.predict", "--run_dir", str(run_dir)]
        + ["--out_dir", str(out), str(csv)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "5 patients scored, 1 skipped" in result.stdout
    assert "column 'Cholesterol'" in result.stdout and "(line 7)" in result.stdout
    predicted = pd.read_csv(out / "predictions.csv")
    evaluator = pd.read_csv(run_dir / "evaluator" / "predictions.csv")
    evaluator = evaluator[evaluator["partition"] == "holdout"]
    for model in ("lasso", "mlp", "nam"):
        expected = evaluator[evaluator["model"] == model].set_index("patient_id")["score"]
        np.testing.assert_allclose(
            predicted[f"{model}_risk"], expected.loc[test["patient_id"]].to_numpy(), atol=1e-5
        )
    nam = pd.read_csv(out / "nam_contributions.csv")
    logit = np.log(predicted["nam_risk"] / (1 - predicted["nam_risk"]))
    parts = nam.drop(columns=["bias", "line"]).sum(axis=1)
    np.testing.assert_allclose(parts, logit - nam["bias"], atol=1e-4)
    assert len(list(out.glob("waterfall_line*.png"))) == 5
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 5
    from tests.support.browser import assert_page_renders, find_chromium

    if find_chromium():
        assert_page_renders(out / "report.html")
