"""Trains the default pneumonia configuration on ../shared/data/chest_xray under each
compute precision and reports them side by side.

For each `--precisions` entry (default: float32, what `--precision auto` takes on
a CPU, and mixed_bfloat16, what pays on an Intel CPU with AMX) it runs `python -m pipelines.pneumonia`
on the real train split, then `python -m pipelines.evaluate` of the trained model on the
development site (../shared/data/chest_xray_site: half of the official test split, a
later acquisition) at the run's frozen threshold. It prints wall time, epochs run, and
accuracy / AUC / sensitivity / specificity on the held-out test split (patients split off
train plus the 16 official val images) and on the site. A measurement, not a test.

    python benchmarks/train_default.py [--precisions float32,mixed_bfloat16]
        [--run_dir runs/bench-train-default] [extra pipeline flags]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.machine import cpu_name  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "chest_xray"
SITE = REPO.parent / "shared" / "data" / "chest_xray_site"
BUDGET_S = 20 * 60  # the default run, 2 CPU cores (issue #13)
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
COLUMNS = ("accuracy", "auc", "sensitivity", "specificity", "ece")


def train(run_dir: Path, precision: str, extra: list[str]) -> float | None:
    """One default pipeline run; its wall time in seconds (None if it failed)."""
    command = [
        *(sys.executable, "-m", "pipelines.pneumonia", "--data_dir", str(DATA)),
        *("--run_dir", str(run_dir), "--precision", precision, "--explain", "gradcam"),
        *("--quiet", *extra),
    ]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=ENV)
    return None if result.returncode else time.perf_counter() - start


def evaluate_on_site(run_dir: Path) -> dict | None:
    """The run's model on the development site at its frozen threshold."""
    if not SITE.is_dir():
        return None
    out = run_dir / "site"
    if not (out / "evaluator" / "metrics.json").is_file():
        command = [
            *(sys.executable, "-m", "pipelines.evaluate"),
            *("--model", str(run_dir / "trainer" / "model.keras")),
            *("--data_dir", str(SITE), "--run_dir", str(out)),
        ]
        if subprocess.run(command, cwd=REPO, env=ENV).returncode:
            return None
    return json.loads((out / "evaluator" / "metrics.json").read_text())["test"]


def row(name: str, metrics: dict | None) -> str:
    if metrics is None:
        return f"  {name:<10} (not measured)"
    figures = " ".join(f"{key}={metrics.get(key, float('nan')):.3f}" for key in COLUMNS)
    return f"  {name:<10} n={metrics['n']:<4d} {figures}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--run_dir", type=Path, default=None)
    args, extra = parser.parse_known_args(argv)
    if not (DATA / "train").is_dir():
        print(f"skipped: no data at {DATA}")
        return 0
    root = args.run_dir or REPO / "runs" / f"bench-train-default-{time.strftime('%Y%m%d-%H%M%S')}"
    results = []
    for precision in args.precisions.split(","):
        run_dir = root / precision
        wall = train(run_dir, precision, extra)
        if wall is None:
            print(f"{precision}: pipeline failed")
            return 1
        results.append((precision, run_dir, wall, evaluate_on_site(run_dir)))
    print(
        f"machine: {cpu_name()} ({platform.machine()}), {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}; extra flags: {' '.join(extra) or 'none'}"
    )
    for precision, run_dir, wall, site in results:
        trainer = json.loads((run_dir / "trainer" / "metadata.json").read_text())["outputs"]
        record = json.loads((run_dir / "pipeline.json").read_text())
        metrics = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
        print(
            f"{precision}: wall {wall / 60:.1f} min (trainer "
            f"{record['durations_s'].get('trainer', 0) / 60:.1f} min, "
            f"{'within' if wall <= BUDGET_S else 'OVER'} the {BUDGET_S // 60} min budget), "
            f"epochs run {trainer['epochs_run']}, threshold {metrics['threshold']:.3f}"
        )
        print(row("held-out", metrics["test"]))
        print(row("site", site))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
