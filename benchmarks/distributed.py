"""Training throughput: one process vs two local workers on the same data and global batch.

Images per second of the Trainer's training batches (from each epoch's first batch to
the end of its last: validation and epoch-end callbacks excluded), in the epochs after
the first (the first traces the step functions), for:
  one process   --strategy default, batch 32
  mirrored      --strategy mirrored --cpu_replicas 2, 16 per replica (one process)
  two workers   --strategy multi_worker, 16 per replica, two processes on 127.0.0.1
On one machine the workers share its cores, so no speed-up is expected: the figure is
the overhead a user pays for the all-reduce (and synchronized batch norm) before adding
machines. Data: the first --per_class train images of each class of
../shared/data/chest_xray (drawn images when it is absent), through ExampleGen and the
Transform at --image_size.

    python benchmarks/distributed.py [--image_size 64] [--per_class 250] [--epochs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.local_workers import free_ports, started, tf_config, wait_all  # noqa: E402
from benchmarks.machine import cpu_name  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "chest_xray"
GLOBAL_BATCH = 32
TIMEOUT_S = 1800


def worker(strategy: str, cpu_replicas: int, transform: Path, out_dir: Path, epochs: int) -> None:
    """One training process: the strategy first (before TensorFlow starts), then the
    Trainer with a callback that times every epoch; prints the times as JSON."""
    from components import distribution

    made = distribution.start(strategy, cpu_replicas)
    import keras

    import components.pneumonia.trainer as trainer

    class EpochTimer(keras.callbacks.Callback):
        """Seconds from an epoch's first training batch to the end of its last: the
        validation pass and the epoch-end callbacks (checkpoint, TensorBoard) come after
        the last batch and are not training throughput."""

        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.first_batch: float | None = None

        def on_train_batch_begin(self, batch, logs=None):
            if self.first_batch is None:
                self.first_batch = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.last_batch = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(self.last_batch - self.first_batch)

    timer = EpochTimer()
    real = trainer.training_callbacks
    trainer.training_callbacks = lambda *a, **k: [timer, *real(*a, **k)]
    if not distribution.is_chief():
        out_dir = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = trainer.run(
        out_dir,
        transform=transform,
        epochs=epochs,
        patience=epochs,
        batch_size=GLOBAL_BATCH // made.num_replicas_in_sync,
        strategy=strategy,
        loss="cross_entropy",
        normalization="standardize",
        epoch_heatmaps=False,
        verbose=0,
    )
    print(json.dumps({"seconds": timer.seconds, "global_batch": outputs["global_batch_size"]}))


def prepare(root: Path, image_size: int, per_class: int) -> tuple[Path, int]:
    from benchmarks.small_folders import copy_real_folder, make_drawn_folder
    from components.artifacts import read_json
    from components.pneumonia.example_gen import run as example_gen
    from components.pneumonia.transform import run as transform

    if (SHARED / "train").is_dir():
        data = copy_real_folder(SHARED, root / "data", per_class)
    else:
        print(f"no data at {SHARED}: drawn images instead")
        data = make_drawn_folder(root / "data", per_class // 2, 2)
    example_gen(root / "example_gen", data_dir=str(data), seed=0)
    transform(
        root / "transform", examples=root / "example_gen", image_size=image_size, acquisition=1.0
    )
    return root / "transform", int(
        read_json(root / "transform" / "transform.json")["counts"]["train"]
    )


def measure(name: str, commands: list[list[str]], envs: list[dict], logs: Path) -> list[float]:
    with started(commands, envs, REPO, logs / name) as processes:
        finished = wait_all(processes, logs / name, TIMEOUT_S)
    for i, result in enumerate(finished):
        if result.returncode:
            raise SystemExit(f"{name} process {i} failed: {result.stderr[-2000:]}")
    return json.loads(finished[0].stdout.strip().splitlines()[-1])["seconds"]


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "worker":
        worker(argv[1], int(argv[2]), Path(argv[3]), Path(argv[4]), int(argv[5]))
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--per_class", type=int, default=250)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    transform, n_train = prepare(root, args.image_size, args.per_class)
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}

    def command(strategy: str, replicas: int, out: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "benchmarks.distributed",
            "worker",
            strategy,
            str(replicas),
            str(transform),
            str(root / out),
            str(args.epochs),
        ]

    ports = free_ports(2)
    runs = {
        "one process, batch 32": measure(
            "default", [command("default", 1, "default")], [env], root / "logs"
        ),
        "mirrored, 2 logical CPUs x 16": measure(
            "mirrored", [command("mirrored", 2, "mirrored")], [env], root / "logs"
        ),
        "two workers x 16 (127.0.0.1)": measure(
            "multi_worker",
            [command("multi_worker", 1, "multi_worker")] * 2,
            [{**env, "TF_CONFIG": tf_config(ports, i)} for i in range(2)],
            root / "logs",
        ),
    }
    print(
        f"machine: {cpu_name()} ({platform.machine()}), {os.cpu_count()} CPU cores; "
        f"{n_train} training images at {args.image_size} px, global batch {GLOBAL_BATCH}, "
        f"epochs 2-{args.epochs} timed"
    )
    base = None
    for name, seconds in runs.items():
        # Several replicas drop the short last batch (components/saved_splits.py).
        images = n_train if name.startswith("one") else n_train // GLOBAL_BATCH * GLOBAL_BATCH
        rate = images * len(seconds[1:]) / sum(seconds[1:])
        base = base or rate
        print(f"{name:32s} {rate:8.1f} images/s  ({rate / base:.2f}x one process)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
