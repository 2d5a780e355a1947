"""pipelines.predict on bad input: one line naming the problem, exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.parametrize(
    "case, expected",
    [
        ("bad_model", "is not a loadable Keras model"),
        ("no_run", "is not a finished run"),
        ("no_paths", "give the images"),
        ("both", "exactly one of --run_dir"),
    ],
)
def test_bad_predict_input_is_one_line(tmp_path, case, expected):
    model = tmp_path / "model.keras"
    model.write_text("not a model")
    args = {
        "bad_model": ["--model", str(model), "--threshold", "0.5", str(tmp_path)],
        "no_run": ["--run_dir", str(tmp_path / "missing"), str(tmp_path)],
        "no_paths": ["--model", str(model), "--threshold", "0.5"],
        "both": ["--model", str(model), "--run_dir", str(tmp_path), str(tmp_path)],
    }[case]
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.predict", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr
