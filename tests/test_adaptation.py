"""--adapt_to DIR: adapting to a deployment site's unlabelled images (issue 23).

A tiny phantom run (datasets/synthetic_cxr/phantom.py) with a "site" whose images are a
shifted acquisition of other phantoms (strong gamma, blur, a bright frame): the run
completes and records the adaptation; the site's labels are never read; bad folders
stop before any step; and the adapted model ranks the shifted images no worse than the
same run without adaptation (its Trainer again, in this process, same seed and flags).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from absl import flags
from absl.testing import flagsaver
from PIL import Image

from datasets.synthetic_cxr.phantom import gaussian_blur, make_phantom
from models.self_training import NO_PSEUDO_LABEL, class_balanced_pseudo_labels, round_fractions
from tests.support.runs import run_module

PHANTOM_SIZE = 64  # drawn at 64 px, trained at 32: the lesions survive the resize
TRAIN_PER_CLASS, TEST_PER_CLASS, SITE_PER_CLASS = 80, 10, 40
FLAGS = (
    "--image_size",
    "32",
    "--epochs",
    "6",
    "--batch_size",
    "8",
    "--bootstrap",
    "50",
    "--explain",
    "gradcam",
    "--seed",
    "5",
    # float32 whatever --precision auto means on this machine: the comparison below is
    # of one arithmetic.
    "--precision",
    "float32",
    "--quiet",
)
# AUC on 80 images moves by a few hundredths between nearby models; "no worse" allows that.
AUC_TOLERANCE = 0.03


def save_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def new_acquisition(image: np.ndarray) -> np.ndarray:
    """The site's shift: blur, a strong gamma (brighter lungs) and a bright 2-pixel frame,
    as a collimator edge would leave."""
    pixels = gaussian_blur(image.astype(np.float32) / 255.0, 1.0)
    pixels = np.clip(pixels, 0.0, 1.0) ** 0.5
    pixels[:2, :] = pixels[-2:, :] = pixels[:, :2] = pixels[:, -2:] = 0.8
    return np.round(pixels * 255.0).astype(np.uint8)


def make_phantom_folders(root: Path) -> tuple[Path, Path, dict[str, int]]:
    """A Kaggle-layout folder (train/, test/) of phantoms, and the site: shifted phantoms
    of other seeds, half in a folder named NORMAL that holds both classes (labels must not
    come from folder names) and half two levels down. Returns (data, site, the site's
    true labels by path)."""
    seed, truth = 0, {}
    for split, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        for _ in range(per_class):
            for label in ("NORMAL", "PNEUMONIA"):
                seed += 1
                image, _ = make_phantom(seed, label == "PNEUMONIA", PHANTOM_SIZE)
                name = (
                    f"IM-{seed:04d}-0001.png"
                    if label == "NORMAL"
                    else f"person{seed}_bacteria_{seed}.png"
                )
                save_png(root / "data" / split / label / name, image)
    for index in range(SITE_PER_CLASS):
        for pneumonia in (False, True):
            seed += 1
            image, _ = make_phantom(seed, pneumonia, PHANTOM_SIZE)
            folder = root / "site" / ("NORMAL" if index % 2 else "ward/b")
            path = folder / f"site-{seed:05d}.png"
            save_png(path, new_acquisition(image))
            truth[str(path.resolve())] = int(pneumonia)
    return root / "data", root / "site", truth


@pytest.fixture(scope="module")
def adapted_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("adaptation")
    data, site, truth = make_phantom_folders(root)
    run_dir = root / "run"
    result = run_module(
        "pipelines.pneumonia",
        "--data_dir",
        str(data),
        "--adapt_to",
        str(site),
        *FLAGS,
        "--run_dir",
        str(run_dir),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, site, truth, result


def trainer_outputs(run_dir: Path) -> dict:
    return json.loads((run_dir / "trainer" / "metadata.json").read_text())["outputs"]


def test_the_run_records_what_it_adapted_to(adapted_run):
    run_dir, site, truth, result = adapted_run
    adaptation = trainer_outputs(run_dir)["adaptation"]
    assert adaptation["adapted"] is True and adaptation["labels_read"] is False
    assert adaptation["folder"] == str(site.resolve())
    assert adaptation["images"] == len(truth) == 2 * SITE_PER_CLASS
    assert len(adaptation["fingerprint"]) == 16
    assert "class-balanced self-training" in adaptation["method"]
    assert "most confident" in adaptation["rule"]
    assert set(adaptation["pseudo_labels"]) == {"NORMAL", "PNEUMONIA"}
    assert all(n > 0 for n in adaptation["pseudo_labels"].values())
    assert sum(adaptation["pseudo_labels"].values()) <= adaptation["images"]
    assert (adaptation["fraction"], adaptation["rounds"], adaptation["epochs_per_round"]) == (
        0.5,
        1,
        3,
    )
    flags_used = json.loads((run_dir / "pipeline.json").read_text())["flags"]
    assert flags_used["adapt_to"] == str(site)
    card = (run_dir / "model_card.md").read_text()
    assert "## Adaptation to a deployment site" in card
    assert f"Adapted, without labels, to the {len(truth)} unlabelled images" in card
    assert "adapted without labels to" in result.stdout


def test_the_sites_labels_are_never_read(adapted_run):
    """Every site image is saved UNLABELLED, the ones in the folder named NORMAL too; the
    pseudo-labels are the model's guesses, better than chance on this shift (the site is
    half pneumonia) though this tiny model is no oracle."""
    from components.saved_splits import ADAPT_SPLIT, UNLABELLED, split_labels

    run_dir, _, truth, _ = adapted_run
    saved = split_labels(run_dir / "transform", ADAPT_SPLIT)
    assert len(saved) == len(truth) and np.all(saved == UNLABELLED)
    adapt_files = pd.read_csv(run_dir / "transform" / "adapt.csv")["path"]
    assert sorted(adapt_files) == sorted(truth)
    pseudo = pd.read_csv(run_dir / "trainer" / "pseudo_labels.csv", keep_default_na=False)
    chosen = pseudo[pseudo["pseudo_label"] != ""]
    correct = chosen["path"].map(truth) == (chosen["pseudo_label"] == "PNEUMONIA")
    assert correct.mean() >= 0.7, chosen


def shifted_auc(model_path: Path, truth: dict[str, int]) -> float:
    """AUC on the site's images with their true labels, decoded as the Transform does."""
    import tensorflow as tf
    from sklearn.metrics import roc_auc_score

    from components.images import decoded_files
    from components.trained_model import load_keras_model

    paths = sorted(truth)
    images = np.stack([x for x, _ in decoded_files(paths, 32).as_numpy_iterator()])
    scores = load_keras_model(model_path).predict(tf.constant(images, tf.float32), verbose=0)
    return float(roc_auc_score([truth[p] for p in paths], np.ravel(scores)))


def test_the_adapted_model_is_no_worse_on_the_shifted_site(adapted_run, tmp_path):
    """The same Trainer with the same seed and flags, without the adaptation phase, is
    the unadapted model; both are scored on the site's images with their labels."""
    from components.pneumonia import trainer

    run_dir, _, truth, _ = adapted_run
    params = json.loads((run_dir / "trainer" / "metadata.json").read_text())["params"]
    trainer.run(tmp_path, transform=run_dir / "transform", **{**params, "adapt_epochs": 0})
    assert trainer_outputs(run_dir)["adaptation"]["adapted"]
    unadapted = shifted_auc(tmp_path / "model.keras", truth)
    adapted = shifted_auc(run_dir / "trainer" / "model.keras", truth)
    assert adapted >= unadapted - AUC_TOLERANCE, (adapted, unadapted)


@pytest.mark.parametrize("case", ["missing", "no_images"])
def test_a_bad_adapt_folder_stops_before_any_step(case, tmp_path):
    folder = tmp_path / "site"
    if case == "no_images":  # an empty folder takes the same path
        (folder / "deeper").mkdir(parents=True)
        (folder / "deeper" / "notes.txt").write_text("not an image")
        (folder / ".hidden.png").write_bytes(b"")
    run_dir = tmp_path / "run"
    result = run_module("pipelines.pneumonia", "--adapt_to", str(folder), "--run_dir", str(run_dir))
    assert_one_line_bad_input(result)
    assert "--adapt_to" in result.stderr
    assert not run_dir.exists()


def assert_one_line_bad_input(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr


def transform_cache_key(site: Path) -> dict:
    import pipelines.pneumonia as pneumonia

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    with flagsaver.flagsaver(adapt_to=str(site)):
        components = pneumonia.build_components(None, None)
    return next(c for c in components if c.name == "transform").cache_key


def test_a_changed_site_folder_reruns_the_transform_and_so_the_trainer(tmp_path):
    site = tmp_path / "site"
    save_png(site / "a.png", np.zeros((8, 8), np.uint8))
    before = transform_cache_key(site)
    save_png(site / "deeper" / "b.png", np.zeros((8, 8), np.uint8))
    assert transform_cache_key(site) != before


def test_pseudo_labels_take_the_most_confident_share_of_each_predicted_class():
    scores = np.array([0.9, 0.6, 0.99, 0.55, 0.1, 0.45, 0.3, 0.05, 0.2])
    probabilities = np.stack([1 - scores, scores], axis=1)
    labels = class_balanced_pseudo_labels(probabilities, 0.5)
    # Pneumonia predicted for 4 (0.99, 0.9, 0.6, 0.55): the top 2; normal for 5: the top 3.
    assert labels.tolist() == [1, -1, 1, -1, 0, -1, -1, 0, 0]
    assert NO_PSEUDO_LABEL == -1
    # One class predicted: only that class gets pseudo-labels (the Trainer then stops).
    assert set(class_balanced_pseudo_labels(probabilities[scores < 0.5], 1.0)) == {0}
    assert round_fractions(0.5, 2) == [0.25, 0.5]
