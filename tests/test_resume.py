"""Issue #16, point 8: a training SIGKILLed mid-epoch and resumed ends as one never
interrupted: the same epochs and metrics, the same best epoch, the same weights.

BackupAndRestore alone restores weights, optimizer and epoch, but not EarlyStopping's,
ReduceLROnPlateau's or ModelCheckpoint's state (best value, waits, best weights) nor the
dropout seed; and a reshuffle-every-iteration dataset (and the augmentation's seed
states) restart on resume. models/distributed_fit.ResumableState and the loop's replay of
the trained epochs' input cover these.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from benchmarks.small_folders import make_drawn_folder
from components.pneumonia.example_gen import run as example_gen
from components.pneumonia.transform import run as transform
from tests.conftest import REPO_ROOT
from tests.test_distributed import ENV

TIMEOUT_S = 300
KILLED_EPOCH = 3  # epochs 0-2 backed up, epoch 3 half done


def train(transform_dir, out_dir) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.train_once", str(transform_dir), str(out_dir)],
        cwd=REPO_ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def start_paused_run(transform_dir, out_dir, marker) -> subprocess.Popen:
    command = [sys.executable, "-m", "tests.support.train_once", str(transform_dir), str(out_dir)]
    return subprocess.Popen(
        [*command, str(KILLED_EPOCH), str(marker)],
        cwd=REPO_ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_when_paused(process: subprocess.Popen, marker) -> None:
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), f"never reached epoch {KILLED_EPOCH} (exit {process.poll()})"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=60)


@pytest.fixture(scope="module")
def transform_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    data = make_drawn_folder(root / "data", 12, 2)
    example_gen(root / "example_gen", data_dir=str(data), seed=0)
    transform(root / "transform", examples=root / "example_gen", image_size=32, acquisition=1.0)
    return root / "transform"


def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_result(transform_dir, tmp_path):
    resumed_dir, marker = tmp_path / "resumed", tmp_path / "paused"
    paused = start_paused_run(transform_dir, resumed_dir, marker)  # alongside, to save time
    try:
        uninterrupted = train(transform_dir, tmp_path / "uninterrupted")
    finally:
        kill_when_paused(paused, marker)
    assert uninterrupted["epochs_run"] > KILLED_EPOCH, "stopped before the kill point"
    state = json.loads((resumed_dir / "backup" / "training_metadata.json").read_text())
    assert state["epoch"] == KILLED_EPOCH
    resumed = train(transform_dir, resumed_dir)
    for key in ("epochs_run", "best_epoch", "best_val_auc", "weights_sha256"):
        assert resumed[key] == uninterrupted[key], key
    logged = [
        pd.read_csv(d / "history.csv").drop_duplicates("epoch", keep="last").reset_index(drop=True)
        for d in (tmp_path / "uninterrupted", resumed_dir)
    ]
    pd.testing.assert_frame_equal(logged[0], logged[1])
