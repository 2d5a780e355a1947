"""How an entry point must end on bad input and on a bug, as the user sees it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import keras


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def assert_bad_input(result: subprocess.CompletedProcess, expected: str, written: Path) -> None:
    """Exit 2, one `error:` line naming the problem, no traceback, and `written` (the run
    or output folder) never made: the check ran before any step."""
    detail = result.stderr[-2000:]
    assert result.returncode == 2, detail
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and expected in lines[0], detail
    assert "Traceback" not in result.stderr, detail
    assert not written.exists(), f"{written} was written before the input was refused"


def assert_bug_reported(result: subprocess.CompletedProcess, expected: str, log: Path) -> None:
    """Exit 1, one `error:` line with the step, the error and the log's path; no traceback
    on the terminal; the whole traceback in the log."""
    detail = result.stderr[-2000:]
    assert result.returncode == 1, detail
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and expected in lines[0] and str(log) in lines[0], detail
    assert "Traceback" not in result.stderr, detail
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and expected in text, text[-2000:]


def tiny_model(path: Path, shape: tuple[int | None, ...]) -> Path:
    """A one-score model on images of `shape` (pooling and a dense layer), saved by Keras."""
    inputs = keras.Input(shape)
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(pooled)).save(path)
    return path
