"""Every bad input of the corpus (benchmarks/bad_inputs.py) is handled as designed.

- Image and CSV problems that should not stop a run: ExampleGen and Transform run on each
  one alone (fast, in this process), and the pipeline's command line runs once on a
  folder holding all the folder cases together, to the end.
- Problems that must stop a run: each goes through the pipeline's command line (one
  process per pipeline; flags parsed anew per case) and must give exit code 2, one
  `error:` line naming the file, folder or column, and no traceback.
- The heart cases all go through `python -m pipelines.heart`'s command line, to the end
  (lasso only) or to the error line.
- Safety: a model file carrying Python code is refused by Keras safe mode unexecuted.
- Flags, TF_CONFIG and model files the pipelines cannot use are refused as they start,
  before any step: exit 2, one line, no run folder.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.bad_inputs import (
    CASES,
    ENV,
    PNEUMONIA_FLAGS,
    REPO_ROOT,
    build_combined,
    drive_subprocess,
    judge_outputs,
    run_components,
)
from tests.support.exits import assert_bad_input, tiny_model
from tests.support.runs import run_module

COMPONENT_CASES = [
    c for c in CASES if c.pipeline == "pneumonia" and c.outcome != "error" and not c.cli_only
]
PNEUMONIA_CLI_CASES = [
    c for c in CASES if c.pipeline == "pneumonia" and (c.outcome == "error" or c.cli_only)
]
HEART_CASES = [c for c in CASES if c.pipeline == "heart"]
FOLDER_CASES = [c for c in COMPONENT_CASES if c.base == "folder"]


def names(cases):
    return [case.name for case in cases]


def test_corpus_has_at_least_30_distinct_bad_inputs_across_both_pipelines():
    assert len(set(names(CASES))) == len(CASES) >= 30
    assert len(HEART_CASES) >= 10 and len(CASES) - len(HEART_CASES) >= 20
    assert {case.outcome for case in CASES} == {"used", "skipped", "error"}
    for case in CASES:
        assert case.outcome == "used" or case.expect, case.name


@pytest.mark.parametrize("case", COMPONENT_CASES, ids=names(COMPONENT_CASES))
def test_bad_image_or_row_is_used_or_skipped_with_its_reason(case, tmp_path):
    verdict = run_components(case, tmp_path)
    assert verdict.ok, verdict.detail


@pytest.fixture(scope="module")
def pneumonia_cli(tmp_path_factory):
    return drive_subprocess(
        "pneumonia", tmp_path_factory.mktemp("pneumonia_cli"), names(PNEUMONIA_CLI_CASES)
    )


@pytest.mark.parametrize("case", PNEUMONIA_CLI_CASES, ids=names(PNEUMONIA_CLI_CASES))
def test_pneumonia_stops_with_one_line_naming_the_problem(case, pneumonia_cli):
    verdict = pneumonia_cli[case.name]
    assert verdict.ok, verdict.detail


@pytest.fixture(scope="module")
def heart_cli(tmp_path_factory):
    return drive_subprocess("heart", tmp_path_factory.mktemp("heart_cli"), names(HEART_CASES))


@pytest.mark.parametrize("case", HEART_CASES, ids=names(HEART_CASES))
def test_heart_bad_table_is_handled_as_designed(case, heart_cli):
    verdict = heart_cli[case.name]
    assert verdict.ok, verdict.detail


def test_pneumonia_runs_to_the_end_with_every_bad_file_at_once(tmp_path):
    inp, items = build_combined(FOLDER_CASES, tmp_path / "all")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.pneumonia",
            *inp.args(),
            "--run_dir",
            str(inp.run_dir),
            *PNEUMONIA_FLAGS,
        ],
        cwd=REPO_ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    record = json.loads((inp.run_dir / "pipeline.json").read_text())
    assert record["status"] == "completed"
    problems = {}
    for case in FOLDER_CASES:
        status, detail = judge_outputs(case, items[case.name], inp.run_dir)
        if status != "as_designed":
            problems[case.name] = detail
    assert not problems
    stats = json.loads((inp.run_dir / "example_gen" / "stats.json").read_text())
    skipped = sum(case.outcome == "skipped" for case in FOLDER_CASES)
    assert stats["skipped_count"] == len(stats["skipped"]) == skipped
    assert stats["duplicate_images"]["removed_across_splits"] == 1
    transform = json.loads((inp.run_dir / "transform" / "transform.json").read_text())
    assert transform["undecodable"] == []  # ExampleGen caught everything TensorFlow can't read
    # TensorBoard instructions bind to localhost only.
    assert "--host localhost" in result.stdout


def test_model_file_with_python_code_is_refused_without_running_it(tmp_path):
    import keras

    from components.errors import DataError
    from components.pneumonia.model_import import load_model_checked
    from components.trained_model import load_trained_model

    marker = tmp_path / "code_ran"
    inputs = keras.Input((4,))
    side_effect = f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]"
    outputs = keras.layers.Lambda(eval(side_effect))(inputs)  # noqa: S307 (the test's own code)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    marker.unlink()  # building the model ran the lambda once; loading must not
    with pytest.raises(DataError, match="not a loadable Keras model.*arbitrary code execution"):
        load_model_checked(path)  # pipelines.evaluate --model
    (tmp_path / "trainer").mkdir()
    path.rename(tmp_path / "trainer" / "model.keras")
    with pytest.raises(ValueError, match="arbitrary code execution"):
        load_trained_model(tmp_path / "trainer")  # the Evaluator and the Explainer
    assert not marker.exists()


# --------------------------------------------------------------------------------------
# Flags, environment and model files refused before any step runs


@pytest.fixture(scope="module")
def odd_models(tmp_path_factory) -> dict[str, str]:
    """Models the pipelines cannot feed: RGB input, and an input of any size."""
    root = tmp_path_factory.mktemp("odd_models")
    return {
        "rgb": str(tiny_model(root / "rgb.keras", (32, 32, 3))),
        "any_size": str(tiny_model(root / "any_size.keras", (None, None, 1))),
    }


EVALUATE = ("--data_dir", "{data}", "--threshold", "0.5", "--model")
# (case, entry point, arguments, environment, what the error line must say); each one
# process, so only what differs in how it is caught (absl's bounds, our checks before
# any step); the variants of a check are unit tests (tests/test_distributed.py: TF_CONFIG).
REFUSED_BEFORE_ANY_STEP = [
    ("batch_size_0", "pneumonia", ("--batch_size", "0"), {}, "--batch_size=0: 0 is not a positive"),
    ("epochs_0", "pneumonia", ("--epochs", "0"), {}, "--epochs=0: 0 is not a positive integer"),
    ("sanity_draws_0", "pneumonia", ("--sanity_checks", "--sanity_draws", "0"), {}, "draws=0"),
    (
        "xception_at_32_px",
        "pneumonia",
        ("--model", "xception", "--image_size", "32"),
        {},
        "--model xception needs --image_size of at least 71, got 32",
    ),
    (
        "tf_config_not_json",
        "pneumonia",
        ("--strategy", "multi_worker"),
        {"TF_CONFIG": '{"cluster": {"worker": ["localhost:12345"]'},
        "TF_CONFIG is not valid JSON",
    ),
    (
        "held_out_shares_leave_no_train",
        "pneumonia",
        ("--val_fraction", "0.5", "--test_fraction", "0.4"),
        {},
        "leave less than 20% of the patients to train on",
    ),
    ("heart_epochs_0", "heart", ("--epochs", "0"), {}, "--epochs=0: 0 is not a positive integer"),
    ("evaluate_rgb_model", "evaluate", (*EVALUATE, "{rgb}"), {}, "takes 3-channel images"),
    (
        "evaluate_model_of_any_size",
        "evaluate",
        (*EVALUATE, "{any_size}"),
        {},
        "takes images of any size",
    ),
]


@pytest.mark.parametrize(
    "pipeline, args, env, expected",
    [case[1:] for case in REFUSED_BEFORE_ANY_STEP],
    ids=[case[0] for case in REFUSED_BEFORE_ANY_STEP],
)
def test_refused_before_any_step_with_one_line(pipeline, args, env, expected, odd_models, tmp_path):
    run_dir = tmp_path / "run"
    args = [arg.format(data=tmp_path / "data", **odd_models) for arg in args]
    result = run_module(f"pipelines.{pipeline}", *args, "--run_dir", str(run_dir), env=env)
    assert_bad_input(result, expected, run_dir)
