"""A new site's workflow: the shift report, unlabelled folders, recalibration on a few
labelled images, and predict --site (pipelines.evaluate, components/shift.py).

The end-to-end tests read the session's synthetic run (tests/support/runs.py): its own
held-out test patients must not raise a drift alarm against its validation split, the
same images visibly changed (gamma, blur, a bright border) must.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter, ImageOps

from components import shift
from tests.support.runs import run_module


def test_the_ridge_operator_gives_scikit_learns_out_of_fold_predictions():
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold, cross_val_predict

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 5)), (np.arange(60) >= 45).astype(float)
    operator = shift.out_of_fold_operator(x, 5, 1.0, seed=3)
    expected = cross_val_predict(Ridge(alpha=1.0), x, y, cv=KFold(5, shuffle=True, random_state=3))
    np.testing.assert_allclose(operator @ y, expected, atol=1e-10)


def test_the_domain_classifier_tells_shifted_vectors_from_alike_ones():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(300, 10))
    alike_auc, alike_p = shift.domain_classifier_test(reference, rng.normal(size=(60, 10)), 500, 0)
    moved_auc, moved_p = shift.domain_classifier_test(
        reference, rng.normal(size=(60, 10)) + 0.6, 500, 0
    )
    assert alike_p > 0.05 and abs(alike_auc - 0.5) < 0.15
    assert moved_p < 0.005 and moved_auc > 0.75


def test_the_effect_floor_keeps_huge_samples_from_crying_wolf():
    """A certain shift (p ~ 0) counts only when it is large enough to matter."""
    certain = {"p_value": 1e-9, "effect_floor": shift.MIN_KS_STATISTIC}
    tiny, large, undefined = shift.decide(
        [{**certain, "effect": 0.03}, {**certain, "effect": 0.3}, {**certain, "effect": np.nan}]
    )
    assert not tiny["shifted"] and large["shifted"] and not undefined["shifted"]


def test_the_tests_permute_patients_not_images():
    """Five patients of ten near-identical scores each, against a reference of other
    patients from the same distribution: permuting images would call them different."""
    rng = np.random.default_rng(0)

    def images(scores: np.ndarray, patients: np.ndarray | None) -> shift.ImageSet:
        blank = np.zeros((len(scores), 1))
        return shift.ImageSet(np.array([]), blank, scores, scores > 0, blank, patients)

    reference = images(rng.normal(size=300), None)
    scores = np.repeat(rng.normal(size=5), 10) + rng.normal(0, 0.05, 50)
    by_image = shift.score_test(reference, images(scores, None))
    by_patient = shift.score_test(reference, images(scores, np.repeat(np.arange(5), 10)))
    assert by_image["p_value"] < 0.005 < 0.05 < by_patient["p_value"]
    assert by_patient["p_value_images_independent"] < 0.001  # scipy's takes them apart


def test_the_ks_statistic_is_scipys():
    from scipy import stats

    rng = np.random.default_rng(5)
    a, b = np.round(rng.normal(size=80), 1), np.round(rng.normal(0.4, 1, 30), 1)  # with ties
    sides = (np.arange(110) >= 80).astype(float)[:, None]
    d = shift.ks_statistics(np.r_[a, b], sides)[0]
    assert d == pytest.approx(stats.ks_2samp(a, b).statistic)


def test_a_folder_without_class_folders_is_read_unlabelled(tmp_path):
    from benchmarks.small_folders import draw_image
    from components.errors import DataError
    from components.pneumonia.example_gen import run as example_gen

    for k in range(3):
        draw_image(tmp_path / "site" / f"scan{k}.png", k)
    (tmp_path / "site" / "nested").mkdir()
    (tmp_path / "out").mkdir()
    example_gen(tmp_path / "out", data_dir=str(tmp_path / "site"), external="test")
    examples = pd.read_csv(tmp_path / "out" / "examples.csv", keep_default_na=False)
    assert len(examples) == 3 and set(examples["label"]) == {""}
    assert set(examples["split"]) == {"test"}
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert [Path(s["path"]).name for s in stats["skipped"]] == ["nested"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no readable images"):
        example_gen(tmp_path / "out", data_dir=str(tmp_path / "empty"), external="test")
    with pytest.raises(DataError, match="needs NORMAL/ and PNEUMONIA/"):
        example_gen(
            tmp_path / "out",
            data_dir=str(tmp_path / "site"),
            external="test",
            calibration_dir=str(tmp_path / "site"),
        )


def copy_test_images(run_dir: Path, root: Path, change=None, labelled: bool = True) -> Path:
    """The run's test images (patients held out of training), as a hospital's folder:
    NORMAL/ and PNEUMONIA/, or (unlabelled) all in one folder; `change` edits each."""
    examples = pd.read_csv(run_dir / "example_gen" / "examples.csv")
    for row in examples[examples["split"] == "test"].itertuples():
        folder = root / row.label if labelled else root
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / Path(row.path).name
        if change is None:
            shutil.copyfile(row.path, target)
        else:
            change(Image.open(row.path).convert("L")).save(target)
    return root


def another_scanner(image: Image.Image) -> Image.Image:
    """Visibly another acquisition: brighter midtones (gamma 0.5), blurred, and a bright
    collimation border."""
    lut = [round(255 * (v / 255) ** 0.5) for v in range(256)]
    blurred = image.point(lut).filter(ImageFilter.GaussianBlur(2))
    edge = image.width // 10
    inner = blurred.crop((edge, edge, image.width - edge, image.height - edge))
    return ImageOps.expand(inner, border=edge, fill=250)


def evaluate(run_dir: Path, data: Path, out: Path, *extra: str):
    result = run_module(
        "pipelines.evaluate",
        *("--model", str(run_dir / "trainer" / "model.keras"), "--data_dir", str(data)),
        *("--run_dir", str(out), "--bootstrap", "50", *extra),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_held_out_patients_raise_no_drift_alarm(synthetic_run, tmp_path):
    run_dir = synthetic_run.run_dir
    hospital = copy_test_images(run_dir, tmp_path / "held_out")
    result = evaluate(run_dir, hospital, tmp_path / "eval")
    report = json.loads((tmp_path / "eval" / "evaluator" / "shift.json").read_text())
    assert report["drift_detected"] is False, report["tests"]
    assert {t["test"] for t in report["tests"]} == {"scores", "features"}
    assert report["n"]["reference"] == 150 and report["n"]["new"] == 150
    assert "drift detected" not in result.stderr
    page = (tmp_path / "eval" / "evaluator" / "report.html").read_text()
    assert "No drift detected" in page and "sharpness" in page


def test_an_unlabelled_folder_from_another_scanner_gets_the_shift_report_and_no_metrics(
    synthetic_run, tmp_path
):
    run_dir = synthetic_run.run_dir
    folder = copy_test_images(run_dir, tmp_path / "scanner_b", another_scanner, labelled=False)
    result = evaluate(run_dir, folder, tmp_path / "eval")
    evaluator = tmp_path / "eval" / "evaluator"
    report = json.loads((evaluator / "shift.json").read_text())
    assert report["drift_detected"] is True, report["tests"]
    warnings = [line for line in result.stderr.splitlines() if "drift detected" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: drift detected")
    metrics = json.loads((evaluator / "metrics.json").read_text())
    assert "test" not in metrics and "val" not in metrics
    assert metrics["unlabelled"]["n"] == 150 and metrics["threshold_rule"] == "frozen"
    predictions = pd.read_csv(evaluator / "predictions.csv", keep_default_na=False)
    assert len(predictions) == 150 and set(predictions["label"]) == {""}
    flagged = (predictions["score"] >= metrics["threshold"]).mean()
    assert metrics["unlabelled"]["flagged_share"] == pytest.approx(flagged)
    assert report["flagged_share"]["new"] == pytest.approx(flagged)
    assert "150 unlabelled images scored" in result.stdout
    assert "Drift detected" in (evaluator / "report.html").read_text()


def test_calibration_images_choose_the_threshold_and_never_count_in_the_metrics(
    synthetic_run, tmp_path
):
    from components.pneumonia.evaluator import choose_threshold

    run_dir = synthetic_run.run_dir
    hospital = copy_test_images(run_dir, tmp_path / "hospital", another_scanner)
    # The site labels 8 images a class out of the very folder it evaluates.
    calibration = tmp_path / "calibration"
    for label in ("NORMAL", "PNEUMONIA"):
        (calibration / label).mkdir(parents=True)
        for path in sorted((hospital / label).iterdir())[:8]:
            shutil.copyfile(path, calibration / label / path.name)
    result = evaluate(run_dir, hospital, tmp_path / "eval", "--calibration_dir", str(calibration))
    out = tmp_path / "eval"
    metrics = json.loads((out / "evaluator" / "metrics.json").read_text())
    assert metrics["threshold_rule"] == "site_calibrated" and "val" not in metrics
    assert metrics["calibration"]["n"] == 16 and metrics["calibration"]["rule"] == "youden"
    low, high = metrics["calibration"]["threshold_ci95"]
    assert low <= metrics["threshold"] <= high
    predictions = pd.read_csv(out / "evaluator" / "predictions.csv")
    calibration_names = {p.name for p in calibration.rglob("*.png")}
    assert not calibration_names & set(predictions["path"].map(lambda p: Path(p).name))
    assert metrics["test"]["n"] == len(predictions) == 150 - 16
    stats = json.loads((out / "example_gen" / "stats.json").read_text())
    assert len(stats["calibration"]["removed_from_test"]) == 16
    original = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    assert metrics["frozen"]["threshold"] == original["threshold"]
    assert metrics["frozen"]["test"]["n"] == metrics["test"]["n"]
    assert f"site threshold {metrics['threshold']:.3f}" in result.stdout

    # predict --site labels at the site's threshold, which is the calibration images' own
    # Youden threshold (their scores as predict computes them).
    site = out / "evaluator" / "site.json"
    predicted = tmp_path / "predicted"
    scored = run_module(
        "pipelines.predict",
        *("--run_dir", str(run_dir), "--site", str(site), "--explain=", "--out_dir"),
        *(str(predicted), str(calibration)),
    )
    assert scored.returncode == 0, scored.stderr[-3000:]
    table = pd.read_csv(predicted / "predictions.csv", keep_default_na=False)
    truth = table["path"].map(lambda p: int(Path(p).parent.name == "PNEUMONIA")).to_numpy()
    youden = choose_threshold(truth, table["score"].to_numpy(), "youden", 0.95)
    assert metrics["threshold"] == pytest.approx(youden, abs=1e-5)
    expected = np.where(table["score"] >= metrics["threshold"], "PNEUMONIA", "NORMAL")
    assert table["label"].tolist() == expected.tolist()
    info = json.loads((predicted / "predict.json").read_text())
    assert info["threshold"] == metrics["threshold"]
    assert "site_calibrated" in info["threshold_source"]
    # The site's serving copy and its model card carry the same operating point.
    serving = json.loads((out / "export" / "serving.json").read_text())
    assert serving["threshold"] == metrics["threshold"]
    assert serving["threshold_rule"] == "site_calibrated"
    card = json.loads((out / "model_card.json").read_text())
    assert card["site"]["threshold"] == metrics["threshold"]
    assert card["site"]["calibration"]["n"] == 16
    assert "## Deployment site: hospital" in (out / "model_card.md").read_text()


def test_predict_refuses_a_site_json_of_another_model(synthetic_run, tmp_path):
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"threshold": 0.3, "model_sha256": "0" * 64, "model": "other"}))
    result = run_module(
        "pipelines.predict",
        *("--run_dir", str(synthetic_run.run_dir), "--site", str(site), str(tmp_path)),
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "was calibrated for another model" in result.stderr
