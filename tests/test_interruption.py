"""SIGKILL a pipeline run during ExampleGen, mid-epoch and during the Explainer; the same
command run again completes with valid artifacts and does not redo finished components.

The kills are real SIGKILLs from this process. To land them at known points, the run
is started through `python -m benchmarks.bad_inputs pause POINT ...`, which stops the
pipeline there (an artifact under its temporary name, or mid-epoch) until it is killed.
"""

from __future__ import annotations

import pytest

from benchmarks.bad_inputs import interruption_trials
from components.artifacts import write_json


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    return {
        v.case: v
        for v in interruption_trials(tmp_path_factory.mktemp("interrupted"), log=lambda line: None)
    }


@pytest.mark.parametrize("point", ["during_example_gen", "mid_epoch", "during_explainer"])
def test_killed_run_resumes_with_valid_artifacts(trials, point):
    assert trials[point].ok, trials[point].detail


def test_a_failed_write_keeps_the_old_artifact(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_json(path, {"auc": 0.9})

    def killed(*args, **kwargs):  # the process dies between writing and renaming
        raise KeyboardInterrupt

    monkeypatch.setattr("components.artifacts.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_json(path, {"auc": 0.1})
    assert path.read_text() == '{\n  "auc": 0.9\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # the temporary is gone
