"""Same flags and --seed, same results: examples.csv byte for byte and, on CPU, the same
metrics.json and predictions (Keras seeding and TensorFlow op determinism in the
Trainer, seeded splits, shuffling, augmentation and bootstrap). Another seed changes them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from benchmarks.bad_inputs import ENV, PNEUMONIA_FLAGS, REPO_ROOT
from components.heart import example_gen as heart_example_gen
from components.pneumonia.example_gen import run as example_gen
from datasets.chest_xray_pneumonia.small_folders import make_drawn_folder


def pneumonia(*args: str) -> subprocess.CompletedProcess:
    flags = list(PNEUMONIA_FLAGS)
    flags[flags.index("--epochs") + 1] = "2"
    return subprocess.run(
        [sys.executable, "-m", "pipelines.pneumonia", *flags, *args],
        cwd=REPO_ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_same_flags_and_seed_give_the_same_examples_and_metrics(tmp_path):
    data = make_drawn_folder(tmp_path / "data", 12, 2)
    runs = [tmp_path / "first", tmp_path / "second"]
    for run_dir in runs:
        result = pneumonia("--data_dir", str(data), "--run_dir", str(run_dir), "--seed", "5")
        assert result.returncode == 0, result.stderr[-3000:]
    first, second = runs
    for artifact in ("example_gen/examples.csv", "evaluator/predictions.csv"):
        assert (first / artifact).read_bytes() == (second / artifact).read_bytes(), artifact
    metrics = [json.loads((run / "evaluator" / "metrics.json").read_text()) for run in runs]
    assert metrics[0] == metrics[1]
    assert metrics[0]["test"]["n"] > 0 and metrics[0]["threshold"] is not None
    history = [pd.read_csv(run / "trainer" / "history.csv") for run in runs]
    pd.testing.assert_frame_equal(history[0], history[1])


def test_the_seed_decides_the_split(tmp_path):
    data = make_drawn_folder(tmp_path / "data", 12, 2)
    tables = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        out = tmp_path / name
        out.mkdir()
        example_gen(out, data_dir=str(data), seed=seed)
        tables[name] = (out / "examples.csv").read_bytes()
    assert tables["a"] == tables["b"]
    assert tables["a"] != tables["c"]


def test_heart_examples_are_reproducible(tmp_path):
    tables = []
    for name in ("first", "second"):
        out = tmp_path / name
        out.mkdir()
        heart_example_gen.run(out, csv=None, seed=3, cv=0)
        tables.append((out / "examples.csv").read_bytes())
    assert tables[0] == tables[1]
