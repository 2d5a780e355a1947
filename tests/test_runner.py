"""The local runner: caching by fingerprint, --force, resume after an interruption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.runner import Component, StepError, run_pipeline

CALLS: list[str] = []
FOUND_STATE: list[bool] = []


def produce(out_dir: Path, *, value: int) -> dict:
    CALLS.append("produce")
    (out_dir / "value.txt").write_text(str(value))
    return {"value": value}


def consume(out_dir: Path, *, upstream: Path) -> dict:
    CALLS.append("consume")
    FOUND_STATE.append((out_dir / "partial.txt").exists())
    (out_dir / "partial.txt").write_text("started")
    doubled = 2 * int((upstream / "value.txt").read_text())
    (out_dir / "doubled.txt").write_text(str(doubled))
    return {"doubled": doubled}


def pipeline(value: int = 3) -> list[Component]:
    return [
        Component("produce", produce, {"value": value}, uses_tensorboard=False),
        Component(
            "consume",
            consume,
            {},
            {"upstream": "produce"},
            keep_on_rerun=("partial.txt",),
            uses_tensorboard=False,
        ),
    ]


@pytest.fixture(autouse=True)
def clear_calls():
    CALLS.clear()
    FOUND_STATE.clear()


def test_second_run_skips_completed_components(tmp_path):
    first = run_pipeline(pipeline(), tmp_path, {"value": 3})
    assert first["consume"] == {"doubled": 6}
    assert CALLS == ["produce", "consume"]
    CALLS.clear()
    second = run_pipeline(pipeline(), tmp_path, {"value": 3})
    assert CALLS == []
    assert second == first
    record = json.loads((tmp_path / "pipeline.json").read_text())
    assert record["status"] == "completed"
    assert record["skipped"] == ["produce", "consume"]


def test_force_reruns_everything(tmp_path):
    run_pipeline(pipeline(), tmp_path, {})
    CALLS.clear()
    run_pipeline(pipeline(), tmp_path, {}, force=True)
    assert CALLS == ["produce", "consume"]


def test_changed_parameter_reruns_that_component_and_downstream(tmp_path):
    run_pipeline(pipeline(value=3), tmp_path, {})
    CALLS.clear()
    outputs = run_pipeline(pipeline(value=5), tmp_path, {})
    assert CALLS == ["produce", "consume"]
    assert outputs["consume"] == {"doubled": 10}


def kill_midway(component_dir: Path) -> None:
    """Leave a component as a SIGKILL would: metadata says running, state half-written."""
    meta_path = component_dir / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["status"] = "running"
    meta_path.write_text(json.dumps(meta))
    (component_dir / "partial.txt").write_text("resume me")
    (component_dir / "stale.txt").write_text("left by the killed attempt")


def test_failure_is_recorded(tmp_path):
    def broken(out_dir: Path) -> dict:
        raise RuntimeError("boom")

    with pytest.raises(StepError, match="the broken step failed: RuntimeError: boom") as raised:
        run_pipeline([Component("broken", broken, uses_tensorboard=False)], tmp_path, {})
    assert isinstance(raised.value.__cause__, RuntimeError)  # its traceback, for run.log
    meta = json.loads((tmp_path / "broken" / "metadata.json").read_text())
    assert meta["status"] == "failed" and "boom" in meta["error"]
    assert json.loads((tmp_path / "pipeline.json").read_text())["status"] == "failed"


def test_interrupted_component_resumes_alone_with_its_state(tmp_path):
    run_pipeline(pipeline(), tmp_path, {})
    kill_midway(tmp_path / "consume")
    CALLS.clear()
    FOUND_STATE.clear()
    outputs = run_pipeline(pipeline(), tmp_path, {})
    assert CALLS == ["consume"], "the completed upstream component must not rerun"
    assert FOUND_STATE == [True], "resumable state of the same work survives"
    assert not (tmp_path / "consume" / "stale.txt").exists()
    assert outputs["consume"] == {"doubled": 6}
    meta = json.loads((tmp_path / "consume" / "metadata.json").read_text())
    assert meta["status"] == "completed"


def test_resumable_state_is_dropped_when_the_work_changed(tmp_path):
    run_pipeline(pipeline(value=3), tmp_path, {})
    kill_midway(tmp_path / "consume")
    FOUND_STATE.clear()
    run_pipeline(pipeline(value=5), tmp_path, {})
    assert FOUND_STATE == [False]
