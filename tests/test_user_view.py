"""What a user sees: a closing summary, no control characters in logs, bars at a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios

from datasets.chest_xray_pneumonia.small_folders import make_drawn_folder
from tests.conftest import REPO_ROOT

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
CONTROL = ("\r", "\x1b[", "\x08")


def command(data, run_dir, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipelines.pneumonia",
        "--data_dir",
        str(data),
        "--run_dir",
        str(run_dir),
        "--epochs",
        "2",
        "--image_size",
        "32",
        "--bootstrap",
        "50",
        "--explain",
        "gradcam",
        *extra,
    ]


def run_in_terminal(argv: list[str], timeout: float = 600) -> str:
    """Runs argv with stdout and stderr on a pseudo-terminal; returns everything it printed."""
    controller, terminal = pty.openpty()
    # A new pseudo-terminal is 0 x 0; tqdm fits its bar to the width and would print nothing.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        env=ENV,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
        close_fds=True,
    )
    os.close(terminal)
    chunks = []
    while True:
        ready, _, _ = select.select([controller], [], [], timeout)
        if not ready:
            process.kill()
            break
        try:
            data = os.read(controller, 65536)
        except OSError:  # the terminal closes when the process exits
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=60)
    os.close(controller)
    assert process.returncode == 0, b"".join(chunks)[-3000:]
    return b"".join(chunks).decode(errors="replace")


def test_piped_output_has_summary_and_no_progress_bars(tmp_path):
    data = make_drawn_folder(tmp_path / "data", 12, 2)
    result = subprocess.run(
        command(data, tmp_path / "run"),
        cwd=REPO_ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for needle in ("Run folder:", "AUC", "slowest:", "tensorboard --logdir", "--host localhost"):
        assert needle in result.stdout
    for char in CONTROL:
        assert char not in result.stdout and char not in result.stderr, repr(char)
    assert (tmp_path / "run" / "run.log").stat().st_size > 0
    # In a terminal the same (forced) run shows Keras' progress bar and ours: the file
    # scan, the decoding, the duplicate check and the explanations.
    shown = run_in_terminal(command(data, tmp_path / "run", "--force"))
    assert "\r" in shown or "\x08" in shown
    for bar in (
        "scanning train/NORMAL",
        "hashing for duplicates",
        "reading image headers",
        "decoding train",
        "explaining",
    ):
        assert bar in shown, bar
    assert "Run folder:" in shown
