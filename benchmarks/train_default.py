"""Trains the default pneumonia configuration on ../shared/data/chest_xray and reports.

Prints wall time, epochs run and validation accuracy / AUC / sensitivity / specificity
(validation split off train by patient), plus the held-out test figures (a patient-level
split of train plus the 16 official val images). A measurement, not a test.

    python benchmarks/train_default.py [--run_dir runs/bench-train-default] [extra flags]
"""

from __future__ import annotations

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
BUDGET_S = 20 * 60  # the default run, 2 CPU cores (issue #13)


def main(argv: list[str]) -> int:
    if not (DATA / "train").is_dir():
        print(f"skipped: no data at {DATA}")
        return 0
    run_dir = (
        Path(argv[argv.index("--run_dir") + 1])
        if "--run_dir" in argv
        else REPO / "runs" / f"bench-train-default-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    extra = [
        a for i, a in enumerate(argv) if a != "--run_dir" and (i == 0 or argv[i - 1] != "--run_dir")
    ]
    command = [
        sys.executable,
        "-m",
        "pipelines.pneumonia",
        "--data_dir",
        str(DATA),
        "--run_dir",
        str(run_dir),
        "--explain",
        "gradcam",
        "--quiet",
        *extra,
    ]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    wall = time.perf_counter() - start
    if result.returncode:
        print(f"pipeline failed with exit code {result.returncode}")
        return result.returncode
    record = json.loads((run_dir / "pipeline.json").read_text())
    trainer = json.loads((run_dir / "trainer" / "metadata.json").read_text())
    metrics = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    print(
        f"machine: {cpu_name()} ({platform.machine()}), {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, precision {trainer['outputs'].get('precision')}"
    )
    print(
        f"wall time: {wall / 60:.1f} min (trainer {record['durations_s'].get('trainer', 0) / 60:.1f} min), "
        f"epochs run: {trainer['outputs']['epochs_run']}; "
        f"{'within' if wall <= BUDGET_S else 'OVER'} the {BUDGET_S // 60} min budget"
    )
    for split in ("val", "test"):
        m = metrics[split]
        print(
            f"{split}: n={m['n']} accuracy={m['accuracy']:.3f} auc={m['auc']:.3f} "
            f"auc_ci95=[{m['auc_ci95'][0]:.3f}, {m['auc_ci95'][1]:.3f}] "
            f"sensitivity={m['sensitivity']:.3f} specificity={m['specificity']:.3f}"
        )
    print(f"threshold: {metrics['threshold']:.3f} ({metrics['threshold_rule']})")
    for name, m in metrics.get("slices", {}).get("test", {}).items():
        rates = ", ".join(
            f"{k}={m[k]:.3f}" for k in ("sensitivity", "specificity") if m.get(k) is not None
        )
        print(f"  test slice {name}: n={m['n']} accuracy={m['accuracy']:.3f} {rates}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
