"""A bug inside a step (not bad input) as the user sees it: one line naming the step and
the error, with the path of the log that holds the whole traceback, exit code 1, and no
traceback on the terminal unless --debug. Also: where log records and warnings go.

Each entry point runs as `python -m` does, with a step's `run` made to raise
(`python -m benchmarks.bad_inputs fail <step module> -- <entry point> ...`).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
from absl import logging as absl_logging
from PIL import Image

from benchmarks.bad_inputs import INJECTED_FAILURE
from pipelines import cli
from pipelines.runner import Component, run_pipeline
from tests.support.exits import assert_bug_reported, error_lines, tiny_model
from tests.support.runs import run_module

FAILED = "failed: RuntimeError: " + INJECTED_FAILURE


@pytest.fixture(scope="module")
def model_and_images(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("bug_inputs")
    (root / "images").mkdir()
    Image.fromarray(np.full((40, 40), 128, np.uint8)).save(root / "images" / "grey.png")
    return str(tiny_model(root / "gray.keras", (32, 32, 1))), str(root / "images")


def fail(step_module: str, entry_point: str, *args: str):
    return run_module("benchmarks.bad_inputs", "fail", step_module, "--", entry_point, *args)


@pytest.mark.parametrize(
    "entry_point, step_module, step",
    [
        ("pipelines.pneumonia", "components.pneumonia.example_gen", "example_gen"),
        ("pipelines.heart", "components.heart.example_gen", "example_gen"),
        ("pipelines.evaluate", "components.pneumonia.example_gen", "example_gen"),
    ],
)
def test_a_bug_in_a_step_is_one_line_with_the_log_holding_its_traceback(
    entry_point, step_module, step, model_and_images, tmp_path
):
    run_dir = tmp_path / "run"
    extra = []
    if entry_point == "pipelines.evaluate":
        extra = ["--model", model_and_images[0], "--threshold", "0.5"]
        extra += ["--data_dir", str(tmp_path / "data")]
    result = fail(step_module, entry_point, "--run_dir", str(run_dir), "--quiet", *extra)
    assert_bug_reported(result, f"the {step} step {FAILED}", run_dir / "run.log")


def test_a_bug_in_predict_names_the_predictor_and_its_log(model_and_images, tmp_path):
    model, images = model_and_images
    out_dir = tmp_path / "out"
    result = fail(
        "components.pneumonia.predictor",
        "pipelines.predict",
        *("--model", model, "--threshold", "0.5", "--out_dir", str(out_dir), images),
    )
    assert_bug_reported(result, f"the predictor step {FAILED}", out_dir / "predict.log")


def test_debug_shows_the_traceback_on_the_terminal_too(tmp_path):
    run_dir = tmp_path / "run"
    result = fail(
        "components.heart.example_gen",
        "pipelines.heart",
        *("--run_dir", str(run_dir), "--quiet", "--debug"),
    )
    assert result.returncode == 1
    assert len(error_lines(result.stderr)) == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert INJECTED_FAILURE in (run_dir / "run.log").read_text()


def test_a_bug_before_any_log_leaves_its_traceback_in_a_new_file(capsys):
    def main() -> int:
        raise ValueError("no log yet")

    assert cli.exit_code_of(main) == cli.BUG
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: unexpected ValueError: no log yet (a bug; traceback in ")
    log = Path(line.rsplit(" ", 1)[-1].rstrip(")"))
    try:
        assert 'raise ValueError("no log yet")' in log.read_text()
    finally:
        log.unlink()


def test_warnings_and_other_libraries_records_go_to_the_run_log_only(tmp_path):
    """absl's handler on the terminal (a stand-in stream here) keeps the steps' own lines;
    a Python warning, a library's record (pydicom's, TensorFlow's) and a library's absl
    line (TensorFlow's export logs through absl) reach run.log only."""
    terminal = logging.StreamHandler(stream=(shown := _Lines()))
    root = logging.getLogger()
    root.addHandler(terminal)
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    try:
        log = cli.log_to_run_folder(tmp_path)
        run_pipeline([Component("step", lambda out_dir: {}, uses_tensorboard=False)], tmp_path, {})
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("a library's deprecation", UserWarning, stacklevel=1)
        logging.getLogger("pydicom").error("a decoder failed")
        logging.getLogger("tensorflow").warning("a retracing warning")
        absl_logging.info("a library's absl line")  # from tests/, not the project's code
    finally:
        cli.stop_logging_to_run_folder()
        absl_logging.set_verbosity(verbosity)
        root.removeHandler(terminal)
    assert shown.lines[0] == "step: running" and shown.lines[1].startswith("step: completed")
    assert len(shown.lines) == 2, shown.lines
    text = log.read_text()
    for message in ("a library's deprecation", "a decoder failed", "a retracing warning"):
        assert message in text
    assert "a library's absl line" in text and "step: running" in text
    assert not terminal.filters and not logging.getLogger("tensorflow").filters


class _Lines:
    """A stream that keeps what a handler writes, line by line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines += [line for line in text.splitlines() if line]

    def flush(self) -> None:
        pass
