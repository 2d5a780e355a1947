"""What a user sees: our own first line, help that exits 0, a closing summary, no control
characters in logs, bars at a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios

from tests.conftest import REPO_ROOT

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
CONTROL = ("\r", "\x1b[", "\x08")


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


def test_piped_output_has_summary_and_no_progress_bars(drawn_pneumonia_run, tmp_path):
    result = drawn_pneumonia_run.result  # run with stdout and stderr piped, not --quiet
    for needle in ("Run folder:", "AUC", "slowest:", "tensorboard --logdir", "--host localhost"):
        assert needle in result.stdout
    for char in CONTROL:
        assert char not in result.stdout and char not in result.stderr, repr(char)
    assert (drawn_pneumonia_run.run_dir / "run.log").stat().st_size > 0
    # In a terminal the same command with --force (on a copy of the run: the shared one stays
    # as it is) reruns every step and shows Keras' progress bar and ours: the file scan, the
    # decoding, the duplicate check and the explanations.
    copy = tmp_path / "terminal"
    shutil.copytree(drawn_pneumonia_run.run_dir, copy, symlinks=True)
    model_time = (copy / "trainer" / "model.keras").stat().st_mtime_ns
    args = list(drawn_pneumonia_run.args)
    args[args.index("--run_dir") + 1] = str(copy)
    shown = run_in_terminal([sys.executable, "-m", "pipelines.pneumonia", *args, "--force"])
    assert "skipped (already complete)" not in shown and "skipped (completed earlier" not in shown
    assert (copy / "trainer" / "model.keras").stat().st_mtime_ns != model_time
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


ENTRY_POINTS = ("pipelines.pneumonia", "pipelines.heart", "pipelines.evaluate", "pipelines.predict")
TENSORFLOW_NOISE = ("absl::InitializeLog", "oneDNN", "cuda", "cpu_feature_guard")


def as_a_new_user() -> dict[str, str]:
    """The environment of someone who never heard of TF_CPP_MIN_LOG_LEVEL."""
    return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def test_help_and_helpfull_exit_zero_for_every_entry_point_without_tensorflow_noise():
    commands = [(m, h) for m in ENTRY_POINTS for h in ("--help", "--helpfull")]
    processes = [  # all at once: each mostly waits for its imports
        subprocess.Popen(
            [sys.executable, "-m", module, flag],
            cwd=REPO_ROOT,
            env=as_a_new_user(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for module, flag in commands
    ]
    printed = {}
    for command, process in zip(commands, processes):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, (command, err[-2000:])
        assert not [n for n in TENSORFLOW_NOISE if n.lower() in err.lower()], (command, err)
        assert "--run_dir" in out, command
        printed[command] = out
    for module in ENTRY_POINTS:  # every module's flags, absl's too
        assert "--flagfile" in printed[module, "--helpfull"], module
        assert "--flagfile" not in printed[module, "--help"], module
    for flag in ("--data_dir", "--csv", "--task", "--model", "--image_size", "--explain"):
        assert flag in printed["pipelines.pneumonia", "--helpfull"], flag


def test_the_first_line_a_user_sees_is_ours(tmp_path):
    """`python -m pipelines.pneumonia` as typed: our line comes before any log line, and
    TensorFlow's start-up lines do not come at all (stopped once the first step starts)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.pneumonia", "--run_dir", str(tmp_path / "run")],
        cwd=REPO_ROOT,
        env={**as_a_new_user(), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        for line in process.stdout:
            if line.strip():
                lines.append(line.rstrip())
            if "example_gen: running" in line:
                break
    finally:
        process.kill()
        process.wait(timeout=60)
        process.stdout.close()
    assert lines and lines[0] == f"Pneumonia pipeline, run folder {tmp_path / 'run'}", lines
    assert "running on the synthetic_cxr builder" in lines[1]
    assert not [line for line in lines if any(n.lower() in line.lower() for n in TENSORFLOW_NOISE)]


def test_a_log_level_the_user_set_is_kept():
    """Set by the user, TF_CPP_MIN_LOG_LEVEL decides what TensorFlow prints, not us: at 0,
    TensorFlow's start-up lines, which a new user never sees, reach the terminal."""
    probe = (
        "import os, pipelines, tensorflow as tf; tf.config.list_physical_devices(); "
        "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"},
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "0", result.stderr[-2000:]
    printed = [n for n in TENSORFLOW_NOISE if n.lower() in result.stderr.lower()]
    assert printed, result.stderr[-2000:]
