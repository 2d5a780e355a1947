"""What every entry point shares: one clear line for bad input, absl logging to a file."""

from __future__ import annotations

import hashlib
import logging as std_logging
import os
import sys
from pathlib import Path
from typing import Callable

from absl import logging

from components.artifacts import read_json
from components.errors import DataError


def exit_on_data_error(main: Callable[[], int | None]) -> int:
    """Runs `main`; a DataError becomes one line on stderr and exit code 2 (no traceback)."""
    try:
        return int(main() or 0)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def absl_entry(main: Callable[[], int | None]) -> Callable[[list[str]], None]:
    """The function for absl's app.run: no stray arguments, DataError as one line."""
    from absl import app

    def entry(argv: list[str]) -> None:
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        sys.exit(exit_on_data_error(main))

    return entry


def log_to_run_folder(run_dir: Path, name: str = "run") -> None:
    """Also writes absl logs to <run_dir>/<name>.log (one log file per run)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = std_logging.FileHandler(os.fspath(run_dir / f"{name}.log"))
    handler.setFormatter(std_logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.get_absl_logger().addHandler(handler)


def data_fingerprint(data_dir: str | None, csv: str | None) -> str:
    """Names, sizes and modification times of the input files: cheap change detection."""
    digest = hashlib.sha256()
    if data_dir:
        for path in sorted(Path(data_dir).rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(
                    f"{path.relative_to(data_dir)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode()
                )
    elif csv and Path(csv).is_file():
        digest.update(Path(csv).read_bytes())
    return digest.hexdigest()[:16]


def summary(run_dir: Path) -> str:
    """The closing lines: where the run is, headline metrics with CIs, slowest steps."""
    record = read_json(run_dir / "pipeline.json")
    metrics = read_json(run_dir / "evaluator" / "metrics.json")
    lines = [f"Run folder: {run_dir}"]
    for split in [s for s in ("val", "test") if s in metrics]:
        m = metrics[split]
        if "auc_ci95" in m:
            lo, hi = m["auc_ci95"]
            lines.append(
                f"  {split:4s} n={m['n']:4d}  AUC {m['auc']:.3f} [{lo:.3f}, {hi:.3f}]  "
                f"accuracy {m['accuracy']:.3f}  sensitivity {m['sensitivity']:.3f}  "
                f"specificity {m['specificity']:.3f}"
            )
        else:
            lines.append(
                f"  {split:4s} n={m['n']:4d}  accuracy {m['accuracy']:.3f}  "
                f"macro AUC {m.get('auc_macro', float('nan')):.3f}"
            )
    if metrics.get("threshold") is not None:
        origin = metrics.get("threshold_source") or metrics["threshold_rule"]
        lines.append(f"  threshold {metrics['threshold']:.3f} ({origin})")
    durations = sorted(record["durations_s"].items(), key=lambda kv: -kv[1])[:3]
    if durations:
        lines.append("  slowest: " + ", ".join(f"{k} {v:.0f} s" for k, v in durations))
    if record.get("skipped"):
        lines.append("  skipped (already complete): " + ", ".join(record["skipped"]))
    lines.append(
        f"Inspect heatmaps: tensorboard --logdir {run_dir / 'tensorboard'} --host localhost"
    )
    return "\n".join(lines)
