"""pipelines.predict on bad input: one line naming the problem, exit 2, no traceback;
and a file it cannot read is skipped with one line, nothing more on the terminal."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO_ROOT
from tests.support.dicom_files import write_dicom
from tests.support.exits import assert_bad_input, tiny_model
from tests.support.runs import run_module


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


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """Tiny models saved by Keras (grayscale, RGB, any size) and folders to score: one
    with a PNG and a DICOM whose JPEG 2000 data is corrupt, one with no image."""
    root = tmp_path_factory.mktemp("predict_inputs")
    images, empty = root / "images", root / "empty"
    images.mkdir()
    empty.mkdir()
    ramp = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))
    Image.fromarray(ramp).save(images / "ramp.png")
    write_dicom(images / "j2k.dcm", ramp, jpeg2000_payload=True)
    (empty / "notes.txt").write_text("no image here\n")
    return {
        "gray": str(tiny_model(root / "gray.keras", (32, 32, 1))),
        "rgb": str(tiny_model(root / "rgb.keras", (32, 32, 3))),
        "any_size": str(tiny_model(root / "any_size.keras", (None, None, 1))),
        "images": str(images),
        "empty": str(empty),
        "missing": str(root / "missing"),
    }


@pytest.mark.parametrize(
    "model, paths, extra, expected",
    [
        ("gray", ["missing"], [], "nothing to score; {missing}: no such file or folder"),
        ("gray", ["empty"], [], "{empty}: no image files"),
        ("gray", ["images"], ["--batch_size", "0"], "--batch_size=0: 0 is not a positive"),
        ("rgb", ["images"], [], "takes 3-channel images (32x32x3)"),
        ("any_size", ["images"], [], "takes images of any size"),
    ],
    ids=["missing_path", "folder_without_images", "batch_size_0", "rgb_model", "any_size"],
)
def test_predict_refuses_before_writing_anything(inputs, model, paths, extra, expected, tmp_path):
    out_dir = tmp_path / "out"
    result = run_module(
        "pipelines.predict",
        *("--model", inputs[model], "--threshold", "0.5", "--out_dir", str(out_dir), *extra),
        *(inputs[path] for path in paths),
    )
    assert_bad_input(result, expected.format(**inputs), out_dir)


def test_corrupt_jpeg2000_dicom_is_skipped_with_one_line_and_no_traceback(inputs, tmp_path):
    """pydicom logs the failed decoder's traceback; it belongs in predict.log, and the
    terminal shows only the file's skip line (the reason, also in predictions.csv)."""
    out_dir = tmp_path / "out"
    result = run_module(
        "pipelines.predict",
        *("--model", inputs["gray"], "--threshold", "0.5", "--explain=", "--out_dir"),
        *(str(out_dir), inputs["images"]),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 scored, 1 skipped" in result.stdout
    assert "skipped j2k.dcm: DICOM compressed as JPEG 2000" in result.stdout
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "Traceback" in (out_dir / "predict.log").read_text()
