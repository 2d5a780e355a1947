"""Worker processes on 127.0.0.1 for benchmarks/distributed.py and tests/test_distributed.py:
free ports, TF_CONFIG, a hard timeout each, and every process killed at the end."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence


def free_ports(n: int) -> list[int]:
    """n ports the kernel has just handed out on 127.0.0.1 (held open together, so distinct)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def tf_config(ports: Sequence[int], index: int) -> str:
    """TF_CONFIG of worker `index` in a cluster of workers on 127.0.0.1 (worker 0 is chief)."""
    return json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def started(
    commands: Sequence[Sequence[str]],
    envs: Sequence[Mapping[str, str]],
    cwd: Path,
    logs: Path,
) -> Iterator[list[subprocess.Popen]]:
    """Starts one process per command (output to files under `logs`); kills every one
    still running when the block ends, whatever happened inside it."""
    logs.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen] = []
    try:
        for i, (command, env) in enumerate(zip(commands, envs)):
            out = open(logs / f"{i}.out", "w")
            err = open(logs / f"{i}.err", "w")
            processes.append(
                subprocess.Popen(command, cwd=cwd, env=dict(env), stdout=out, stderr=err)
            )
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()


def wait_all(processes: Sequence[subprocess.Popen], logs: Path, timeout: float) -> list[Finished]:
    """Waits for every process up to one shared deadline; a process still running then is
    killed and reported with return code -9."""
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return [
        Finished(
            p.returncode,
            (logs / f"{i}.out").read_text(errors="replace"),
            (logs / f"{i}.err").read_text(errors="replace"),
        )
        for i, p in enumerate(processes)
    ]


def run_workers(
    command: Sequence[str],
    n: int,
    cwd: Path,
    logs: Path,
    timeout: float,
    env: Mapping[str, str] | None = None,
    worker_env: Mapping[int, Mapping[str, str]] | None = None,
) -> list[Finished]:
    """The same command on n workers of one TF_CONFIG cluster on 127.0.0.1."""
    ports = free_ports(n)
    base = {**os.environ, **(env or {})}
    envs = [
        {**base, "TF_CONFIG": tf_config(ports, i), **((worker_env or {}).get(i, {}))}
        for i in range(n)
    ]
    with started([command] * n, envs, cwd, logs) as processes:
        return wait_all(processes, logs, timeout)
