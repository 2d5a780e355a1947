"""What `pip install` exposes: the dependencies, and none of our generic top-level names."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

OUR_FOLDERS = ("components", "pipelines", "models", "datasets")


def test_installed_distribution_declares_no_top_level_modules():
    try:
        dist = importlib.metadata.distribution("explainable-cxr-pipeline")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("project not pip-installed in this environment")
    top_level = (dist.read_text("top_level.txt") or "").split()
    assert not set(top_level) & set(OUR_FOLDERS)
    assert "tensorflow" in " ".join(dist.requires or [])


def test_outside_the_checkout_our_folders_shadow_nothing(tmp_path):
    probe = (
        "import importlib.util, json; print(json.dumps({n: getattr(importlib.util.find_spec(n), "
        "'origin', None) for n in %r}))" % (OUR_FOLDERS,)
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for name, origin in found.items():
        assert origin is None or str(REPO_ROOT) not in origin, f"{name} resolves into the checkout"


# `--help` / `--helpfull` of every entry point, from the repository root: tests/test_user_view.py
