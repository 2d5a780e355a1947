"""The local runner: links component functions in order inside one run folder.

A component is a step's `run(out_dir, *, <inputs>, <params>, tensorboard_dir=None) -> dict`
(docs/ARCHITECTURE.md; `tensorboard_dir` only for steps that log to TensorBoard). The runner gives it its own folder `<run_dir>/<name>/`, passes
upstream components' folders as inputs, and records `metadata.json` (parameters, cache
key, input fingerprints, library versions, times, status). A component whose parameters,
cache key and inputs match a completed earlier run in the same folder is skipped; `force`
reruns everything; an interrupted component (status not "completed") is rerun, so
rerunning the same command resumes the pipeline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import importlib.metadata
import json
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from absl import logging

from components.artifacts import fingerprint, read_json, write_json
from components.errors import DataError

_LIBRARIES = (
    "tensorflow",
    "keras",
    "tensorflow-datasets",
    "keras-tuner",
    "scikit-learn",
    "shap",
    "lime",
    "tf-explain",
    "numpy",
    "pandas",
)


@dataclasses.dataclass(frozen=True)
class Component:
    """One step: `fn(out_dir, **{arg: upstream folder}, **params)` returns a JSON-able dict."""

    name: str
    fn: Callable[..., Mapping[str, Any]]
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    inputs: Mapping[str, str] = dataclasses.field(default_factory=dict)  # arg -> upstream name
    # What the step reads that its parameters do not name (a hash of the input files):
    # part of the fingerprint, so changed data reruns the step, but never passed to `fn`.
    cache_key: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # Files or folders inside out_dir that survive a rerun (e.g. Keras' BackupAndRestore
    # state, so a killed training resumes mid-way instead of starting over).
    keep_on_rerun: Sequence[str] = ()
    # Whether the component is handed `tensorboard_dir=<run_dir>/tensorboard/<name>`.
    uses_tensorboard: bool = True
    # Arguments that change how a component reports, not what it computes (progress bars,
    # verbosity): passed to it, but not part of its fingerprint.
    display: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def first_line(error: BaseException, limit: int = 300) -> str:
    """An error's message on one line: its first line, except for TensorFlow's "in user
    code:" errors, whose message is their last line (after the traced frames)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    line = lines[-1] if lines[0] == "in user code:" else lines[0]
    return line[:limit]


class StepError(Exception):
    """An unexpected error inside a step (a bug, not bad input), naming the step; the
    original error, with its traceback, is the cause."""

    def __init__(self, step: str, error: Exception) -> None:
        super().__init__(f"the {step} step failed: {type(error).__name__}: {first_line(error)}")
        self.step = step


@contextlib.contextmanager
def naming_failures(step: str) -> Iterator[None]:
    """Bad input (DataError) passes as it is; any other error becomes a StepError."""
    try:
        yield
    except DataError:
        raise
    except Exception as error:
        raise StepError(step, error) from error


def library_versions() -> dict[str, str]:
    """The Python version and that of each library in `_LIBRARIES` that is installed, as
    pipeline.json records them (and the model card shows)."""
    versions = {"python": platform.python_version()}
    for lib in _LIBRARIES:
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


# How long a non-chief worker waits for the chief's steps before its own, and how often
# it looks (the chief may be decoding 100,000 images first).
WORKER_WAIT_S = 24 * 3600.0
WORKER_POLL_S = 1.0

# Flags that change how a run is shown or rerun, not what it computes.
PRESENTATION_FLAGS = ("force", "quiet", "run_dir")


def check_same_flags(run_dir: Path, flags: Mapping[str, Any]) -> None:
    """A run folder holds one run: refuse one made with different (computing) flags.

    Otherwise a second run would silently overwrite the first run's results with
    results from other settings, leaving a folder whose parts disagree.
    """
    record_path = run_dir / "pipeline.json"
    if not record_path.exists():
        return
    try:
        previous = dict(read_json(record_path).get("flags", {}))
    except (OSError, ValueError, AttributeError, TypeError) as error:
        raise DataError(
            f"run folder {run_dir} has an unreadable pipeline.json ({error}); "
            "choose a new --run_dir"
        ) from error
    current = json.loads(json.dumps(dict(flags), default=str))  # as it would be recorded
    changed = sorted(
        k
        for k in set(previous) | set(current)
        if k not in PRESENTATION_FLAGS and previous.get(k) != current.get(k)
    )
    if changed:
        raise DataError(
            f"run folder {run_dir} was made with different flags "
            f"({', '.join(changed)}); choose a new --run_dir"
        )


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _component_fingerprint(component: Component, upstream: Mapping[str, str]) -> str:
    return fingerprint(
        {
            "name": component.name,
            "fn": f"{component.fn.__module__}.{component.fn.__qualname__}",
            "params": dict(component.params),
            "cache_key": dict(component.cache_key),
            "inputs": {arg: upstream[name] for arg, name in component.inputs.items()},
        }
    )


def _clear_folder(folder: Path, keep: Sequence[str]) -> None:
    if not folder.exists():
        return
    for child in folder.iterdir():
        if child.name in keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _skippable(fp: str, previous: Mapping[str, Any] | None, force: bool) -> bool:
    """Completed earlier with the same fingerprint (and not forced): nothing to redo."""
    return (
        not force
        and bool(previous)
        and previous.get("status") == "completed"
        and previous.get("fingerprint") == fp
    )


def _call_arguments(component: Component, run_dir: Path) -> dict[str, Any]:
    """Upstream folders, parameters, display settings and the TensorBoard folder: never the
    cache key, which only decides whether the component runs."""
    kwargs: dict[str, Any] = {arg: run_dir / name for arg, name in component.inputs.items()}
    kwargs.update(component.params)
    kwargs.update(component.display)
    if component.uses_tensorboard:
        kwargs["tensorboard_dir"] = run_dir / "tensorboard" / component.name
    return kwargs


def _run_component(
    component: Component,
    run_dir: Path,
    fp: str,
    upstream: Mapping[str, str],
    previous: Mapping[str, Any] | None,
    versions: Mapping[str, str],
    force: bool,
) -> tuple[dict[str, Any], float]:
    """Runs one component in a cleared folder, recording metadata.json; (outputs, seconds)."""
    out_dir = run_dir / component.name
    meta_path = out_dir / "metadata.json"
    # Resumable state survives only an interrupted attempt at the same work.
    resuming = bool(previous) and previous.get("fingerprint") == fp and not force
    _clear_folder(out_dir, tuple(component.keep_on_rerun) if resuming else ())
    out_dir.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "component": component.name,
        "fingerprint": fp,
        "params": dict(component.params),
        "cache_key": dict(component.cache_key),
        "inputs": {
            arg: {"component": name, "fingerprint": upstream[name]}
            for arg, name in component.inputs.items()
        },
        "versions": dict(versions),
        "started": _now(),
        "status": "running",
    }
    write_json(meta_path, meta)
    logging.info("%s: running", component.name)
    start = time.perf_counter()
    try:
        with naming_failures(component.name):
            result = dict(component.fn(out_dir, **_call_arguments(component, run_dir)) or {})
    except BaseException as error:  # record the failure, then let the caller report it
        cause = error.__cause__ if isinstance(error, StepError) else error
        meta.update(status="failed", ended=_now(), error=f"{type(cause).__name__}: {cause}")
        write_json(meta_path, meta)
        raise
    seconds = round(time.perf_counter() - start, 2)
    meta.update(status="completed", ended=_now(), duration_s=seconds, outputs=result)
    write_json(meta_path, meta)
    return result, seconds


def run_pipeline(
    components: Sequence[Component],
    run_dir: str | Path,
    flags: Mapping[str, Any],
    force: bool = False,
) -> dict[str, dict[str, Any]]:
    """Runs `components` in order in `run_dir`; returns each component's outputs."""
    run_dir = Path(run_dir)
    check_same_flags(run_dir, flags)
    run_dir.mkdir(parents=True, exist_ok=True)
    pipeline_path = run_dir / "pipeline.json"
    record: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "flags": dict(flags),
        "versions": library_versions(),
        "components": [c.name for c in components],
        "status": "running",
        "started": _now(),
        "durations_s": {},
        "skipped": [],
    }
    write_json(pipeline_path, record)

    fingerprints: dict[str, str] = {}
    outputs: dict[str, dict[str, Any]] = {}
    try:
        for component in components:
            fp = _component_fingerprint(component, fingerprints)
            meta_path = run_dir / component.name / "metadata.json"
            previous = read_json(meta_path) if meta_path.exists() else None
            if _skippable(fp, previous, force):
                logging.info(
                    "%s: skipped (completed earlier with the same inputs and "
                    "parameters; --force reruns it)",
                    component.name,
                )
                record["skipped"].append(component.name)
                fingerprints[component.name] = fp
                outputs[component.name] = previous.get("outputs", {})
                continue
            result, seconds = _run_component(
                component, run_dir, fp, fingerprints, previous, record["versions"], force
            )
            record["durations_s"][component.name] = seconds
            write_json(pipeline_path, record)
            fingerprints[component.name] = fp
            outputs[component.name] = result
            logging.info("%s: completed in %.1f s", component.name, seconds)
    except BaseException as error:
        record.update(status="failed", ended=_now(), error=f"{type(error).__name__}: {error}")
        write_json(pipeline_path, record)
        raise
    record.update(status="completed", ended=_now())
    write_json(pipeline_path, record)
    return outputs


def run_as_worker(
    components: Sequence[Component],
    run_dir: str | Path,
    step: str,
    out_dir: Path,
    extra: Mapping[str, Any],
    force: bool = False,
    wait_s: float = WORKER_WAIT_S,
) -> dict[str, Any]:
    """A non-chief worker's share of a pipeline: only `step`, into `out_dir`.

    The chief runs every step in `run_dir`; this waits until the steps before `step`
    there are completed with the fingerprints this worker computes from its own flags
    (so a worker started with other flags never trains on the chief's data), then runs
    `step` on them with `extra` arguments. Nothing is written into `run_dir`.
    """
    run_dir = Path(run_dir)
    started = _now()
    fingerprints: dict[str, str] = {}
    for component in components:
        fingerprints[component.name] = _component_fingerprint(component, fingerprints)
        if component.name == step:
            break
    target = next(c for c in components if c.name == step)
    deadline = time.monotonic() + wait_s
    for name in target.inputs.values():
        meta_path = run_dir / name / "metadata.json"
        while True:
            meta = read_json(meta_path) if meta_path.is_file() else {}
            done = (
                meta.get("status") == "completed" and meta.get("fingerprint") == fingerprints[name]
            )
            # --force: the chief reruns every step; wait for its new run of this one.
            if done and (not force or str(meta.get("ended", "")) >= started):
                break
            if time.monotonic() > deadline:
                raise DataError(
                    f"worker: {run_dir / name} was not completed by the chief with this "
                    f"worker's flags within {wait_s:.0f} s (same flags and --run_dir on "
                    "every worker?)"
                )
            time.sleep(WORKER_POLL_S)
        logging.info("worker: %s ready in %s", name, run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kwargs = _call_arguments(target, run_dir)
    kwargs.pop("tensorboard_dir", None)  # TensorBoard is the chief's
    with naming_failures(step):
        return dict(target.fn(out_dir, **kwargs, **extra) or {})
