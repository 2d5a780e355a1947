"""Pipeline runs several test modules read, each made once per test session.

Training the same small run again in every module that wants to look at one was most of
the suite's time; these fixtures (registered in tests/conftest.py) make each run once.
Tests read them and never change them: a test that reruns a command uses its own folder.

The suite runs on pytest-xdist workers (setup.cfg), and a session fixture is made once
per worker; `made_once` makes a run once for all of them: the first worker to ask makes
it under a file lock, in the folder the workers share, and records what it printed
beside it; the others wait for the lock and read that record.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from benchmarks.small_folders import make_drawn_folder
from datasets.synthetic_cxr.multilabel import write_multilabel_folder

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

# A drawn Kaggle-layout folder trained for two epochs at 32 px: every step, in seconds.
DRAWN_FLAGS = (
    "--epochs",
    "2",
    "--image_size",
    "32",
    "--bootstrap",
    "50",
    "--explain",
    "gradcam",
    "--seed",
    "5",
)
# --task multilabel on 256 multi-label phantoms (Consolidation, Effusion, Nodule, each with
# its own lesion masks) at 64 px, three epochs: enough for Integrated Gradients to point at
# each finding's own lesion far above chance (tests/test_multilabel_pipeline.py).
MULTILABEL_PHANTOMS = 256
MULTILABEL_FLAGS = (
    "--task",
    "multilabel",
    "--epochs",
    "3",
    "--image_size",
    "64",
    "--bootstrap",
    "50",
    "--explain",
    "integrated_gradients",
    "--seed",
    "3",
    "--quiet",
)
HEART_FLAGS = ("--epochs", "3", "--cv", "2", "--seed", "7", "--quiet")


@dataclasses.dataclass(frozen=True)
class Run:
    """A finished run: its folder, the command's arguments and what it printed."""

    run_dir: Path
    args: tuple[str, ...]
    result: subprocess.CompletedProcess
    data_dir: Path | None = None


def run_module(
    module: str, *args: str, timeout: int = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` from the repository root, as a user types it (`env`:
    variables to set besides the suite's)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def predict_into(run_dir: Path, out_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m pipelines.predict --run_dir RUN --out_dir OUT <args>`."""
    return run_module(
        "pipelines.predict", "--run_dir", str(run_dir), "--out_dir", str(out_dir), *args
    )


def finished(module: str, run_dir: Path, *args: str, data_dir: Path | None = None) -> Run:
    """`python -m <module> <args> --run_dir RUN`, which must succeed."""
    args = (*args, "--run_dir", str(run_dir))
    result = run_module(module, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return Run(run_dir, args, result, data_dir)


def shared_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder every xdist worker of this session sees (the session's own
    base folder when the suite runs in one process)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def made_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], Run]
) -> Run:
    """The run `make(root)` writes below `<shared>/<name>/`, made by the first worker that
    asks and read back from its record by every other."""
    root = shared_folder(tmp_path_factory) / name
    record = root.with_suffix(".json")
    with FileLock(str(root.with_suffix(".lock"))):
        if not record.exists():
            if root.exists():  # a worker that asked first failed; its test shows why
                pytest.fail(f"the shared run {name!r} failed in another worker")
            root.mkdir()
            run = make(root)
            fields = {
                "run_dir": str(run.run_dir),
                "args": list(run.args),
                "returncode": run.result.returncode,
                "stdout": run.result.stdout,
                "stderr": run.result.stderr,
                "data_dir": str(run.data_dir) if run.data_dir else None,
            }
            record.write_text(json.dumps(fields))
            return run
    fields = json.loads(record.read_text())
    args = tuple(fields["args"])
    result = subprocess.CompletedProcess(
        args, fields["returncode"], fields["stdout"], fields["stderr"]
    )
    data_dir = Path(fields["data_dir"]) if fields["data_dir"] else None
    return Run(Path(fields["run_dir"]), args, result, data_dir)


@pytest.fixture(scope="session")
def drawn_pneumonia_run(tmp_path_factory) -> Run:
    """`python -m pipelines.pneumonia` on a drawn folder (12 patients a class, 2 images
    each), not --quiet, so its printed output is what a user sees in a pipe."""

    def make(root: Path) -> Run:
        data = make_drawn_folder(root / "data", 12, 2)
        return finished(
            "pipelines.pneumonia", root / "run", "--data_dir", str(data), *DRAWN_FLAGS,
            data_dir=data,
        )  # fmt: skip

    return made_once(tmp_path_factory, "drawn_pneumonia", make)


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory) -> Run:
    """The no-data run (synthetic_cxr, known lesion masks) with the sanity checks."""
    flags = ("--epochs", "2", "--image_size", "64", "--bootstrap", "100", "--explain")
    flags += ("gradcam", "--sanity_checks", "--sanity_images", "8", "--sanity_draws", "2")
    flags += ("--quiet",)
    return made_once(
        tmp_path_factory,
        "synthetic",
        lambda root: finished("pipelines.pneumonia", root / "run", *flags),
    )


@pytest.fixture(scope="session")
def multilabel_run(tmp_path_factory) -> Run:
    """`python -m pipelines.pneumonia --task multilabel` on an NIH-style CSV of multi-label
    phantoms with per-finding lesion masks (datasets/synthetic_cxr/multilabel.py)."""

    def make(root: Path) -> Run:
        csv = write_multilabel_folder(root / "data", MULTILABEL_PHANTOMS, size=64, seed=1)
        return finished(
            "pipelines.pneumonia", root / "run", "--csv", str(csv), *MULTILABEL_FLAGS,
            data_dir=csv.parent,
        )  # fmt: skip

    return made_once(tmp_path_factory, "multilabel", make)


@pytest.fixture(scope="session")
def heart_run(tmp_path_factory) -> Run:
    """`python -m pipelines.heart` on the real table, 3 epochs, with 2-fold CV."""
    return made_once(
        tmp_path_factory,
        "heart",
        lambda root: finished("pipelines.heart", root / "run", *HEART_FLAGS),
    )
