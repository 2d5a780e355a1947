"""python -m pipelines.pneumonia end to end, as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.explain.methods import METHODS
from datasets.chest_xray_pneumonia.small_folders import copy_real_folder, make_drawn_folder
from tests.conftest import REPO_ROOT
from tests.support.tensorboard_events import image_tags


def run_pneumonia(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.pneumonia", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def real_run(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    data = copy_real_folder(shared_data / "chest_xray", root / "data", per_class=40)
    run_dir = root / "run"
    args = (
        "--data_dir",
        str(data),
        "--epochs",
        "1",
        "--image_size",
        "64",
        "--run_dir",
        str(run_dir),
        "--bootstrap",
        "200",
        "--explain",
        ",".join(METHODS),
    )
    first = run_pneumonia(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    return run_dir, args, first


def test_real_data_run_writes_the_run_folder_contract(real_run):
    run_dir, _, first = real_run
    examples = pd.read_csv(run_dir / "example_gen" / "examples.csv")
    assert {"path", "label", "patient_id", "split", "pathogen"} <= set(examples.columns)
    stats = json.loads((run_dir / "example_gen" / "stats.json").read_text())
    assert all(v["patients"] == 0 for v in stats["patient_overlap"].values())
    assert (examples["path"].str.contains("/val/") & (examples["split"] == "test")).sum() == 16
    assert (run_dir / "trainer" / "model.keras").stat().st_size > 0
    assert (run_dir / "trainer" / "history.png").exists()
    metrics = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    assert metrics["threshold_rule"] == "youden_on_val"
    for split in ("val", "test"):
        for key in (
            "n",
            "accuracy",
            "auc",
            "sensitivity",
            "specificity",
            "precision",
            "f1",
            "pr_auc",
            "ece",
            "auc_ci95",
        ):
            assert key in metrics[split], (split, key)
    assert metrics["test"]["n"] == (examples["split"] == "test").sum()
    overlays = list((run_dir / "explainer" / "gradcam").glob("*.png"))
    assert overlays
    tags = image_tags(run_dir / "tensorboard")
    # Every explanation method, and tf-explain's per-epoch heatmaps from training.
    assert {f"explainer/{m}/test_overlays" for m in METHODS} <= tags
    assert {"explainer/panels", "evaluator/roc"} <= tags
    assert any(t.startswith("trainer/heatmaps/grad_cam/") for t in tags)
    assert any(t.startswith("trainer/heatmaps/integrated_gradients/") for t in tags)
    record = json.loads((run_dir / "pipeline.json").read_text())
    assert record["status"] == "completed"
    assert record["components"] == [
        "example_gen",
        "eda",
        "transform",
        "trainer",
        "evaluator",
        "explainer",
    ]
    assert (run_dir / "eda" / "eda.html").exists()
    assert "Run folder:" in first.stdout and "tensorboard --logdir" in first.stdout


def test_same_command_skips_finished_components_and_force_reruns(real_run):
    run_dir, args, _ = real_run
    model_time = (run_dir / "trainer" / "model.keras").stat().st_mtime_ns
    second = run_pneumonia(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (
        "skipped (already complete): example_gen, eda, transform, trainer, evaluator, explainer"
        in second.stdout
    )
    assert (run_dir / "trainer" / "model.keras").stat().st_mtime_ns == model_time
    forced = run_pneumonia(*args, "--force")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert "skipped" not in forced.stdout
    assert (run_dir / "trainer" / "model.keras").stat().st_mtime_ns != model_time


def test_run_folder_is_not_reused_with_different_flags(real_run):
    run_dir, args, _ = real_run
    changed = [a if a != "64" else "48" for a in args]
    result = run_pneumonia(*changed)
    assert result.returncode == 2
    assert "different flags (image_size)" in result.stderr
    assert "Traceback" not in result.stderr


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_missing_class_folder_stops_with_one_line(tmp_path):
    data = make_drawn_folder(tmp_path / "data", 4, 1)
    for path in (data / "train" / "PNEUMONIA").iterdir():
        path.unlink()
    (data / "train" / "PNEUMONIA").rmdir()
    line = one_line_error(run_pneumonia("--data_dir", str(data), "--run_dir", str(tmp_path / "r")))
    assert "missing class folder" in line and "PNEUMONIA" in line


def test_empty_split_stops_with_one_line(tmp_path):
    data = make_drawn_folder(tmp_path / "data", 12, 1, splits=("train", "test"))
    for path in (data / "test" / "NORMAL").iterdir():
        path.unlink()
    for path in (data / "test" / "PNEUMONIA").iterdir():
        path.unlink()
    line = one_line_error(run_pneumonia("--data_dir", str(data), "--run_dir", str(tmp_path / "r")))
    assert "test split is empty" in line


def test_csv_without_required_columns_stops_with_one_line(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("file,finding\na.png,No Finding\n")
    line = one_line_error(run_pneumonia("--csv", str(csv), "--run_dir", str(tmp_path / "r")))
    assert "lacks column(s) image_path, label" in line


def test_threshold_comes_from_validation_predictions_alone(real_run, tmp_path, monkeypatch):
    from components.pneumonia import evaluator

    run_dir, _, _ = real_run
    metrics = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    honest = evaluator.predict_split

    def reversed_test_scores(model, transform_dir, split, batch_size=64):
        scores = honest(model, transform_dir, split, batch_size)
        return 1.0 - scores if split == "test" else scores

    # The Evaluator itself, with every test score turned around: were the threshold to
    # see test scores at all, it would move; the test metrics must move instead.
    monkeypatch.setattr(evaluator, "predict_split", reversed_test_scores)
    evaluator.run(
        tmp_path / "evaluator",
        examples=run_dir / "example_gen",
        transform=run_dir / "transform",
        trainer=run_dir / "trainer",
        bootstrap_resamples=0,
    )
    again = json.loads((tmp_path / "evaluator" / "metrics.json").read_text())
    assert again["threshold"] == metrics["threshold"]
    assert again["val"]["accuracy"] == metrics["val"]["accuracy"]
    assert again["test"]["auc"] == pytest.approx(1.0 - metrics["test"]["auc"])


def test_report_is_self_contained(real_run):
    run_dir, _, _ = real_run
    html = (run_dir / "evaluator" / "report.html").read_text()
    pngs = sorted(p.stem for p in (run_dir / "evaluator").glob("*.png"))
    assert html.count("data:image/png;base64,") == len(pngs) >= 9
    assert 'src="http' not in html and "youden_on_val" in html


def test_evaluate_reproduces_a_finished_run_from_its_saved_model(real_run, tmp_path):
    run_dir, args, _ = real_run
    data_dir = args[args.index("--data_dir") + 1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.evaluate",
            "--model",
            str(run_dir / "trainer" / "model.keras"),
            "--data_dir",
            data_dir,
            "--run_dir",
            str(tmp_path / "eval"),
            "--bootstrap",
            "200",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    original = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    again = json.loads((tmp_path / "eval" / "evaluator" / "metrics.json").read_text())
    assert again == original


def test_no_data_runs_on_synthetic_cxr_and_says_so(tmp_path):
    run_dir = tmp_path / "synthetic"
    result = run_pneumonia(
        "--run_dir",
        str(run_dir),
        "--epochs",
        "2",
        "--image_size",
        "64",
        "--bootstrap",
        "100",
        "--explain",
        "gradcam",
        "--sanity_checks",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "running on the synthetic_cxr builder" in result.stdout
    examples = pd.read_csv(run_dir / "example_gen" / "examples.csv")
    assert examples["split"].value_counts().to_dict() == {"train": 600, "val": 150, "test": 150}
    assert examples["mask_path"].map(lambda p: Path(p).is_file()).all()
    metrics = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    assert metrics["test"]["n"] == 150
    tags = image_tags(run_dir / "tensorboard")
    assert {"explainer/gradcam/test_overlays", "explainer/panels"} <= tags
    localization = json.loads((run_dir / "explainer" / "localization.json").read_text())
    assert localization["gradcam"]["n_counted"] > 0
    assert 0.0 <= localization["gradcam"]["pointing_game"] <= 1.0
    faithfulness = json.loads((run_dir / "explainer" / "faithfulness.json").read_text())
    assert set(faithfulness["methods"]) == {"gradcam"}
    # --sanity_checks: both randomization tests, each with a verdict, and all in the report.
    sanity = json.loads((run_dir / "explainer" / "sanity.json").read_text())
    assert isinstance(sanity["summary"]["gradcam"]["passes"], bool)
    randomized = sanity["data_randomization"]
    assert randomized["n_train"] == 256 and randomized["epochs"] == 10
    assert isinstance(randomized["methods"]["gradcam"]["passes"], bool)
    report = (run_dir / "explainer" / "report.html").read_text()
    for heading in (
        "Explained test images",
        "Faithfulness",
        "Localization",
        "Cascading model-parameter randomization",
        "Data randomization",
    ):
        assert heading in report, heading
    assert (
        report.count("data:image/png;base64,")
        >= len(list((run_dir / "explainer" / "panels").glob("*.png"))) + 2
    )
    assert 'src="http' not in report


def test_metrics_have_slices_that_add_up_to_each_split(real_run):
    run_dir, _, _ = real_run
    metrics = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    test = metrics["slices"]["test"]
    assert test["source=official_val"]["n"] == 16  # the official val images join test
    assert {"batch=IM", "batch=NORMAL2", "batch=person", "pathogen=virus"} <= set(test)
    for split in ("val", "test"):
        for column in ("batch", "pathogen", "source"):
            parts = [v for k, v in metrics["slices"][split].items() if k.startswith(column + "=")]
            assert sum(p["n"] for p in parts) == metrics[split]["n"]
    assert "Slices of test" in (run_dir / "evaluator" / "report.html").read_text()


def test_shap_background_is_a_seeded_sample_of_training_images(real_run, tmp_path, monkeypatch):
    from components.explain import methods as explain_methods
    from components.pneumonia import explainer
    from components.saved_splits import split_images

    run_dir, _, _ = real_run
    seen = {}

    def recording_shap(model, images, background=None, **options):
        seen.update(images=np.asarray(images), background=background)
        return np.zeros(np.asarray(images).shape[:3], dtype="float32")

    monkeypatch.setitem(explain_methods.METHODS, "shap", recording_shap)
    monkeypatch.setitem(explainer.METHODS, "shap", recording_shap)
    outputs = explainer.run(
        tmp_path / "explainer",
        examples=run_dir / "example_gen",
        transform=run_dir / "transform",
        trainer=run_dir / "trainer",
        evaluator=run_dir / "evaluator",
        methods=("shap",),
        faithfulness=False,
        seed=3,
    )
    train = {image.tobytes() for image in split_images(run_dir / "transform", "train")}
    explained = {image.astype("uint8").tobytes() for image in seen["images"]}
    background = [image.astype("uint8").tobytes() for image in seen["background"]]
    assert len(background) == 16 and all(image in train for image in background)
    assert not explained & set(background)
    assert outputs["shap_background"] == {"split": "train", "images": 16, "seed": 3}


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--tune", "--model", "vgg16"), "--tune searches the CNN's"),
        (("--fine_tune_layers", "10"), "--fine_tune_layers unfreezes layers of a pretrained"),
        (("--cpu_replicas", "2"), "--cpu_replicas splits the CPU into replicas for --strategy"),
    ],
)
def test_impossible_flag_combinations_stop_at_start_with_one_line(tmp_path, flags, message):
    result = run_pneumonia(*flags, "--run_dir", str(tmp_path / "run"), timeout=120)
    assert message in one_line_error(result)
    assert not (tmp_path / "run" / "example_gen").exists()  # stopped before any step


def test_every_run_writes_a_model_card(real_run):
    run_dir, _, first = real_run
    card = json.loads((run_dir / "model_card.json").read_text())
    metrics = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    assert card["threshold"] == metrics["threshold"]
    assert card["metrics"]["test"]["auc_ci95"] == metrics["test"]["auc_ci95"]
    assert set(card["data"]["acquisition_batches"]["train"]) <= {"IM", "NORMAL2", "person"}
    assert "Not a medical device" in card["intended_use"] and card["limitations"]
    text = (run_dir / "model_card.md").read_text()
    assert "## Limitations (measured)" in text and f"{metrics['threshold']:.3f}" in text
    assert f"Model card: {run_dir / 'model_card.md'}" in first.stdout
