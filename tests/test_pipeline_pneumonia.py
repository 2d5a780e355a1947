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

from benchmarks.small_folders import copy_real_folder, make_drawn_folder
from components.explain.methods import METHODS
from tests.conftest import REPO_ROOT
from tests.support.browser import assert_page_renders, find_chromium
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
        "export",
        "explainer",
    ]
    assert (run_dir / "eda" / "eda.html").exists()
    assert "Run folder:" in first.stdout and "tensorboard --logdir" in first.stdout


def test_same_command_skips_finished_components(real_run):
    """(`--force` rerunning every step end to end: tests/test_user_view.py's terminal run.)"""
    run_dir, args, _ = real_run
    model_time = (run_dir / "trainer" / "model.keras").stat().st_mtime_ns
    second = run_pneumonia(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (
        "skipped (already complete): example_gen, eda, transform, trainer, evaluator, export, explainer"
        in second.stdout
    )
    assert (run_dir / "trainer" / "model.keras").stat().st_mtime_ns == model_time


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


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_evaluate(*args: str) -> subprocess.CompletedProcess:
    return run_module("pipelines.evaluate", *args)


def test_evaluate_rethreshold_reproduces_a_finished_run_from_its_saved_model(real_run, tmp_path):
    run_dir, args, _ = real_run
    data_dir = args[args.index("--data_dir") + 1]
    result = run_evaluate(
        "--model",
        str(run_dir / "trainer" / "model.keras"),
        "--data_dir",
        data_dir,
        "--rethreshold",
        "--run_dir",
        str(tmp_path / "eval"),
        "--bootstrap",
        "200",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    original = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    again = json.loads((tmp_path / "eval" / "evaluator" / "metrics.json").read_text())
    assert again == original


def test_external_evaluation_scores_at_the_runs_frozen_threshold(real_run, tmp_path):
    """A folder with NORMAL/ and PNEUMONIA/ directly (no train/): the run's test images
    give the run's test metrics, at the run's threshold, which did not move."""
    run_dir, _, _ = real_run
    examples = pd.read_csv(run_dir / "example_gen" / "examples.csv")
    hospital = tmp_path / "hospital"
    for row in examples[examples["split"] == "test"].itertuples():
        (hospital / row.label).mkdir(parents=True, exist_ok=True)
        (hospital / row.label / Path(row.path).name).write_bytes(Path(row.path).read_bytes())
    result = run_evaluate(
        "--model",
        str(run_dir / "trainer" / "model.keras"),
        "--data_dir",
        str(hospital),
        "--run_dir",
        str(tmp_path / "eval"),
        "--bootstrap",
        "200",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    original = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    external = json.loads((tmp_path / "eval" / "evaluator" / "metrics.json").read_text())
    assert external["threshold"] == original["threshold"]
    assert external["threshold_rule"] == "frozen" and "val" not in external
    for key in ("n", "accuracy", "auc", "sensitivity", "specificity", "confusion_matrix"):
        assert external["test"][key] == original["test"][key], key
    assert "batch=person" in external["slices"]["test"]
    # The summary names where the frozen threshold came from.
    assert str(run_dir / "evaluator" / "metrics.json") in result.stdout


def test_external_evaluation_without_a_threshold_says_how_to_give_one(real_run, tmp_path):
    run_dir, _, _ = real_run
    lone_model = tmp_path / "model.keras"
    lone_model.write_bytes((run_dir / "trainer" / "model.keras").read_bytes())
    result = run_evaluate(
        "--model", str(lone_model), "--data_dir", str(tmp_path), "--run_dir", str(tmp_path / "e")
    )
    assert result.returncode == 2
    assert "give --threshold" in result.stderr and "Traceback" not in result.stderr


def test_no_data_runs_on_synthetic_cxr_and_says_so(synthetic_run):
    run_dir, result = synthetic_run.run_dir, synthetic_run.result
    assert "running on the synthetic_cxr builder" in result.stdout
    examples = pd.read_csv(run_dir / "example_gen" / "examples.csv")
    assert examples["split"].value_counts().to_dict() == {"train": 600, "val": 150, "test": 150}
    assert examples["mask_path"].map(lambda p: Path(p).is_file()).all()
    metrics = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    assert metrics["test"]["n"] == 150
    tags = image_tags(run_dir / "tensorboard")
    assert {"explainer/gradcam/test_overlays", "explainer/panels"} <= tags
    localization = json.loads((run_dir / "explainer" / "localization.json").read_text())
    gradcam = localization["gradcam"]
    assert gradcam["n_counted"] > 0
    # Two epochs at 64 px already point at the lesions well above the chance levels stored
    # beside them (measured: 0.67 against a random map's 0.09; 0.27 without tolerance
    # against the lesions' 2.9 % of the image).
    assert gradcam["pointing_game"] > 3 * gradcam["chance"]["random_map"]["pointing_game"]
    assert gradcam["pointing_game_no_tolerance"] > 3 * gradcam["chance"]["mask_area_fraction"]
    faithfulness = json.loads((run_dir / "explainer" / "faithfulness.json").read_text())
    assert set(faithfulness["methods"]) == {"gradcam"}
    # --sanity_checks: both randomization tests, each with a verdict, and all in the report.
    sanity = json.loads((run_dir / "explainer" / "sanity.json").read_text())
    assert sanity["n_images"] == 8 and sanity["draws"] == 2
    threshold = sanity["pass_threshold_spearman"]
    # The summary is the fully randomized step's draws: their mean, [min, max], and a
    # verdict on the worst draw; likewise for the model trained on permuted labels.
    draws = sanity["cascading"]["gradcam"][-1]["spearman_draws"]
    summary = sanity["summary"]["gradcam"]
    assert len(draws) == 2 and summary["final_spearman"] == pytest.approx(np.mean(draws))
    assert summary["final_spearman_interval"] == [min(draws), max(draws)]
    assert summary["passes"] is (max(draws) < threshold)
    randomized = sanity["data_randomization"]
    assert randomized["n_train"] == 256 and randomized["epochs"] == 10
    assert randomized["draws"] == 2
    permuted = randomized["methods"]["gradcam"]
    draws = permuted["spearman_draws"]
    assert len(draws) == 2 and permuted["spearman"] == pytest.approx(np.mean(draws))
    assert permuted["spearman_interval"] == [min(draws), max(draws)]
    assert permuted["passes"] is (max(draws) < randomized["pass_threshold_spearman"])
    report = (run_dir / "explainer" / "report.html").read_text()
    for heading in (
        "Explained test images",
        "Faithfulness",
        "Localization",
        "Cascading model-parameter randomization",
        "randomized down to layer",  # the cascading curve as a table, layer by layer
        "interval over draws",
        "random map",
        "Data randomization",
    ):
        assert heading in report, heading
    assert (
        report.count("data:image/png;base64,")
        >= len(list((run_dir / "explainer" / "panels").glob("*.png"))) + 2
    )
    assert 'src="http' not in report


def test_default_synthetic_model_localizes_the_lesions_far_above_chance(tmp_path):
    """Grad-CAM of the default model on synthetic_cxr points at the known lesions.

    `--epochs 8` is the default run's model itself: the default 15 epochs keep the epoch
    of best validation AUC, which on synthetic_cxr (seed 42) is the 8th, and both runs
    have the same test metrics and maps (measured: pointing game 0.891, 0.500 without
    tolerance, lesions 2.9 % of the image). The pointing game's tolerance is Zhang et
    al.'s 15 px at 224 px scaled to 128 px: 8.6 px.
    """
    run_dir = tmp_path / "default"
    result = run_pneumonia(
        "--run_dir", str(run_dir), "--epochs", "8", "--bootstrap", "100",
        "--explain", "gradcam", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    gradcam = json.loads((run_dir / "explainer" / "localization.json").read_text())["gradcam"]
    assert gradcam["n_counted"] == 64
    assert gradcam["tolerance_px"] == pytest.approx(15 / 224 * 128)
    assert gradcam["pointing_game"] >= 0.8, gradcam["pointing_game"]
    chance = gradcam["chance"]
    assert gradcam["pointing_game"] > 5 * chance["random_map"]["pointing_game"]
    assert gradcam["pointing_game_no_tolerance"] > 5 * chance["mask_area_fraction"]
    assert gradcam["mean_mass_inside"] > 3 * chance["random_map"]["mean_mass_inside"]


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


def hospital_folder(run_dir: Path, root: Path) -> Path:
    """New images as a hospital sends them: a JPEG, a 16-bit PNG, a MONOCHROME1 DICOM
    (pixels stored inverted) and a broken file, made from the run's test images."""
    from PIL import Image

    from tests.support.dicom_files import write_dicom

    examples = pd.read_csv(run_dir / "example_gen" / "examples.csv")
    test = examples[examples["split"] == "test"]
    normal, pneumonia = test[test["label"] == "NORMAL"], test[test["label"] == "PNEUMONIA"]
    for label in ("NORMAL", "PNEUMONIA"):
        (root / label).mkdir(parents=True)
    (root / "NORMAL" / "scan.jpeg").write_bytes(Path(normal["path"].iat[0]).read_bytes())
    gray = np.asarray(Image.open(pneumonia["path"].iat[0]).convert("L"))
    Image.fromarray(gray.astype(np.uint16) * 257).save(root / "PNEUMONIA" / "scan16.png")
    dicom_gray = np.asarray(Image.open(normal["path"].iat[1]).convert("L"))
    write_dicom(root / "NORMAL" / "scan.dcm", 255 - dicom_gray, photometric="MONOCHROME1")
    (root / "PNEUMONIA" / "broken.jpeg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return root


@pytest.fixture(scope="module")
def hospital_predictions(real_run, tmp_path_factory):
    """The hospital folder scored twice: `pipelines.evaluate` into <root>/eval and
    `pipelines.predict` into <root>/predicted; (root, predict's CompletedProcess)."""
    run_dir, _, _ = real_run
    root = tmp_path_factory.mktemp("hospital_predictions")
    hospital = hospital_folder(run_dir, root / "hospital")
    evaluated = run_module(
        "pipelines.evaluate",
        *("--model", str(run_dir / "trainer" / "model.keras"), "--data_dir", str(hospital)),
        *("--run_dir", str(root / "eval"), "--bootstrap", "50"),
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    result = run_module(
        "pipelines.predict",
        *("--run_dir", str(run_dir), "--out_dir", str(root / "predicted"), str(hospital)),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result


def test_predict_scores_new_images_as_the_evaluator_does(real_run, hospital_predictions):
    run_dir, _, _ = real_run
    root, result = hospital_predictions
    out = root / "predicted"
    assert "3 scored, 1 skipped" in result.stdout and "Traceback" not in result.stderr
    predicted = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    skipped = predicted[predicted["reason"] != ""]
    assert skipped["path"].map(lambda p: Path(p).name).tolist() == ["broken.jpeg"]
    scored = predicted[predicted["reason"] == ""]
    scored = scored.set_index(scored["path"].map(lambda p: Path(p).name))
    evaluator = pd.read_csv(root / "eval" / "evaluator" / "predictions.csv")
    evaluator = evaluator.set_index(evaluator["path"].map(lambda p: Path(p).name))
    assert (
        sorted(scored.index) == sorted(evaluator.index) == ["scan.dcm", "scan.jpeg", "scan16.png"]
    )
    np.testing.assert_allclose(
        scored.loc[evaluator.index, "score"].astype(float), evaluator["score"], atol=1e-5
    )
    threshold = json.loads((run_dir / "evaluator" / "metrics.json").read_text())["threshold"]
    expected = np.where(evaluator["score"] >= threshold, "PNEUMONIA", "NORMAL")
    assert scored.loc[evaluator.index, "label"].tolist() == expected.tolist()
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "broken.jpeg" in page
    assert 'src="http' not in page and len(list((out / "gradcam").glob("*.png"))) == 3


def test_predict_page_renders_in_chromium(request):
    if find_chromium() is None:  # before making the predictions only to skip
        pytest.skip("chromium not installed (.ci/run installs Debian's chromium)")
    root, _ = request.getfixturevalue("hospital_predictions")
    assert_page_renders(root / "predicted" / "report.html", min_images=3)


SERVE_IN_A_FRESH_PROCESS = """
import json, sys
import tensorflow as tf
serving = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
files = [open(path, "rb").read() for path in sys.argv[2:]]
out = serving(images=tf.constant(files))
project = [m for m in ("components", "models", "pipelines") if m in sys.modules]
print(json.dumps({"score": out["score"].numpy().tolist(),
                  "label": [name.decode() for name in out["label"].numpy()],
                  "project_modules": project}))
"""


def test_serving_export_runs_without_the_project(real_run, tmp_path):
    run_dir, _, _ = real_run
    predictions = pd.read_csv(run_dir / "evaluator" / "predictions.csv")
    test = predictions[predictions["split"] == "test"]
    chosen = pd.concat(
        [test[test["label"] == "NORMAL"].head(4), test[test["label"] != "NORMAL"].head(4)]
    )
    script = tmp_path / "serve.py"
    script.write_text(SERVE_IN_A_FRESH_PROCESS)
    # -I: isolated mode (no PYTHONPATH, no user site, not the repository on sys.path);
    # run from a folder outside the repository.
    result = subprocess.run(
        [sys.executable, "-I", str(script), str(run_dir / "export" / "serving"), *chosen["path"]],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["project_modules"] == []
    np.testing.assert_allclose(served["score"], chosen["score"], atol=1e-4)
    threshold = json.loads((run_dir / "evaluator" / "metrics.json").read_text())["threshold"]
    assert served["label"] == np.where(chosen["score"] >= threshold, "PNEUMONIA", "NORMAL").tolist()
