"""Same flags and --seed (a run's own flags.txt), same results: examples.csv byte for
byte and, on CPU, the same metrics.json and predictions (Keras seeding and TensorFlow op determinism in the
Trainer, seeded splits, shuffling, augmentation and bootstrap). Another seed changes them.
"""

from __future__ import annotations

import json

import pandas as pd

from benchmarks.small_folders import make_drawn_folder
from components.heart import example_gen as heart_example_gen
from components.pneumonia.example_gen import run as example_gen
from tests.support.runs import run_module


def test_the_runs_flag_file_reproduces_it(drawn_pneumonia_run, tmp_path):
    """<run_dir>/flags.txt holds every computing flag; `--flagfile=` it into a new folder
    gives the same examples, predictions, metrics and training history."""
    first = drawn_pneumonia_run.run_dir
    recorded = json.loads((first / "pipeline.json").read_text())["flags"]
    lines = [line for line in (first / "flags.txt").read_text().splitlines() if line[:1] != "#"]
    for name, value in recorded.items():
        forms = {f"--{name}", f"--no{name}"} if isinstance(value, bool) else set()
        found = [line for line in lines if line in forms or line.startswith(f"--{name}=")]
        assert len(found) == (value is not None), name
    assert not [line for line in lines if line.startswith(("--run_dir", "--force", "--quiet"))]
    second = tmp_path / "again"
    result = run_module(
        "pipelines.pneumonia", f"--flagfile={first / 'flags.txt'}", "--run_dir", str(second)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((second / "pipeline.json").read_text())["flags"] == recorded
    for artifact in ("example_gen/examples.csv", "evaluator/predictions.csv"):
        assert (first / artifact).read_bytes() == (second / artifact).read_bytes(), artifact
    metrics = [
        json.loads((run / "evaluator" / "metrics.json").read_text()) for run in (first, second)
    ]
    assert metrics[0] == metrics[1]
    assert metrics[0]["test"]["n"] > 0 and metrics[0]["threshold"] is not None
    history = [pd.read_csv(run / "trainer" / "history.csv") for run in (first, second)]
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
