"""Shared pytest fixtures: where the real data lives, quiet TensorFlow, and the runs several
test modules read (tests/support/runs.py), each made once per session."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from tests.support.runs import (  # noqa: E402, F401
    drawn_pneumonia_run,
    heart_run,
    multilabel_run,
    synthetic_run,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# The slowest modules, slowest first (seconds of `--durations=0`, one process, AMD EPYC).
# xdist hands each worker whole modules (setup.cfg: --dist loadscope) in collection order;
# started last, one of these would leave a worker running it alone at the end, so they
# start first (longest-processing-time-first scheduling). Add a module here when it grows.
SLOWEST_MODULES = (
    "tests/test_pipeline_pneumonia.py",  # 322 s
    "tests/test_precision.py",  # 261
    "tests/test_distributed.py",  # 185
    "tests/test_bad_inputs.py",  # 172
    "tests/test_user_view.py",  # 113
    "tests/test_multilabel_pipeline.py",  # ~80
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest modules' tests first, in SLOWEST_MODULES' order; the rest keep theirs."""
    rank = {module: index for index, module in enumerate(SLOWEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repository; tests using it skip cleanly when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA
