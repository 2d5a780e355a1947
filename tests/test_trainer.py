"""Trainer: class weights, tuning with keras-tuner, three-class task, keeping the better
fine-tuning phase. Resuming a killed training: tests/test_resume.py (exact resume) and
tests/test_interruption.py (the pipeline killed mid-epoch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from benchmarks.small_folders import make_drawn_folder
from models.training import class_weights
from tests.conftest import REPO_ROOT

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_class_weights_balance_the_classes():
    weights = class_weights([100, 300])
    assert weights[0] * 100 == pytest.approx(weights[1] * 300)
    assert weights[0] == pytest.approx(2.0) and weights[1] == pytest.approx(2 / 3)


def pneumonia_command(*args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipelines.pneumonia",
        "--image_size",
        "32",
        "--bootstrap",
        "50",
        "--explain",
        "gradcam",
        "--quiet",
        *args,
    ]


def test_tune_three_class_writes_trials_and_hparams(tmp_path):
    data = make_drawn_folder(tmp_path / "data", 12, 2)
    run_dir = tmp_path / "run"
    result = subprocess.run(
        pneumonia_command(
            "--data_dir",
            str(data),
            "--run_dir",
            str(run_dir),
            "--task",
            "three_class",
            "--tune",
            "--max_trials",
            "3",
            "--epochs",
            "1",
        ),
        cwd=REPO_ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = pd.read_csv(run_dir / "tuner" / "trials.csv")
    assert len(trials) == 3
    assert {"val_auc", "base_filters", "depth", "dropout", "learning_rate", "focal_gamma"} <= set(
        trials.columns
    )
    best = json.loads((run_dir / "tuner" / "best_hyperparameters.json").read_text())
    assert best["depth"] == int(trials.sort_values("val_auc", ascending=False).iloc[0]["depth"])
    hparams_folders = 0
    for folder in {
        p.parent for p in (run_dir / "tensorboard" / "tuner").rglob("events.out.tfevents.*")
    }:
        accumulator = EventAccumulator(str(folder))
        accumulator.Reload()
        try:
            hparams_folders += bool(accumulator.PluginTagToContent("hparams"))
        except KeyError:  # a folder without HParams summaries (e.g. validation scalars)
            continue
    assert hparams_folders >= 3, "keras-tuner's HParams summaries, one per trial"
    metrics = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    assert metrics["threshold_rule"] == "argmax"
    assert len(metrics["test"]["confusion_matrix"]) == 3
    assert set(metrics["test"]["per_class"]) >= {"NORMAL", "BACTERIA", "VIRUS"}


def test_tuner_trials_train_with_the_final_trainings_loss_and_class_weights():
    import keras
    import keras_tuner

    from components.pneumonia import tuner

    hypermodel = tuner.CnnHyperModel(
        32, 2, 0.5, loss="cross_entropy", normalization="standardize", class_weight={0: 2.0, 1: 0.7}
    )
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    assert isinstance(model.loss, keras.losses.BinaryCrossentropy)
    assert model.get_layer("standardize") is not None

    class Recorder:
        def fit(self, *args, **kwargs):
            return kwargs

    assert hypermodel.fit(hp, Recorder(), "data", epochs=1)["class_weight"] == {0: 2.0, 1: 0.7}


def test_fine_tuning_keeps_phase_one_when_phase_two_is_worse():
    import keras
    import numpy as np

    from components.pneumonia.trainer import keep_better_phase, weights_by_path

    inputs = keras.Input((4,))
    frozen = keras.layers.Dense(3, name="backbone", trainable=False)
    net = keras.Model(inputs, keras.layers.Dense(1, name="head")(frozen(inputs)))
    phase_one = weights_by_path(net)
    frozen.trainable = True  # what unfreezing does, which reorders net.get_weights()
    for weight in net.weights:
        weight.assign(np.asarray(weight) + 1.0)
    assert keep_better_phase(net, phase_one, 0.90, [0.85, 0.88])
    for weight in net.weights:
        np.testing.assert_array_equal(np.asarray(weight), phase_one[weight.path])
    changed = {w.path: np.asarray(w) + 1.0 for w in net.weights}
    for weight in net.weights:
        weight.assign(changed[weight.path])
    assert not keep_better_phase(net, phase_one, 0.90, [0.85, 0.93])
    np.testing.assert_array_equal(np.asarray(net.weights[0]), changed[net.weights[0].path])
