"""What every entry point shares: absl's app.run with help that exits 0, one clear line for
bad input, absl logging to a file, the run's flag file, and its HParams summary."""

from __future__ import annotations

import hashlib
import logging as std_logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from absl import app, flags, logging

from components.artifacts import read_json, write_text
from components.errors import DataError
from pipelines.runner import check_same_flags

FLAGFILE = "flags.txt"


def exit_on_data_error(main: Callable[[], int | None]) -> int:
    """Runs `main`; a DataError becomes one line on stderr and exit code 2 (no traceback)."""
    try:
        return int(main() or 0)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _exit_zero(parse: Callable[[str], None], argument: str) -> None:
    """absl's help flags print the help, then exit 1; asking for help is not an error."""
    try:
        parse(argument)
    except SystemExit as stop:
        raise SystemExit(0) from stop


class _HelpFlag(app.HelpFlag):
    def parse(self, argument: str) -> None:
        _exit_zero(super().parse, argument)


class _HelpshortFlag(app.HelpshortFlag):
    def parse(self, argument: str) -> None:
        _exit_zero(super().parse, argument)


class _HelpfullFlag(app.HelpfullFlag):
    def parse(self, argument: str) -> None:
        _exit_zero(super().parse, argument)


def define_help_flags() -> None:
    """absl's --help (-?), --helpshort and --helpfull, exiting 0 so `--help && ...` chains."""
    app.define_help_flags()
    for help_flag in (_HelpFlag(), _HelpshortFlag(), _HelpfullFlag()):
        for name in (help_flag.name, help_flag.short_name):
            if name and name in flags.FLAGS:
                delattr(flags.FLAGS, name)
        flags.DEFINE_flag(help_flag)


def run(main: Callable[[], int | None]) -> None:
    """What `python -m pipelines.<name>` runs: absl's app.run with help that exits 0."""
    define_help_flags()
    app.run(absl_entry(main))


def absl_entry(main: Callable[[], int | None]) -> Callable[[list[str]], None]:
    """The function for absl's app.run: no stray arguments, DataError as one line."""

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


def write_flagfile(run_dir: Path, names: Sequence[str], module: str) -> Path:
    """<run_dir>/flags.txt: the flags that decide what the run computes, as absl reads them,
    so `--flagfile=<run_dir>/flags.txt` reproduces it (in a new folder unless --run_dir).

    Checks first that the folder is not another run's, so that run's file stays as it was.
    """
    values = {name: flags.FLAGS[name].value for name in names}
    check_same_flags(run_dir, values)
    lines = [
        f"# python -m {module} --flagfile={run_dir / FLAGFILE} reproduces this run",
        "# (in a new run folder; add --run_dir DIR to choose it)",
        *(flags.FLAGS[name].serialize() for name in names),
    ]
    path = run_dir / FLAGFILE
    write_text(path, "\n".join(line for line in lines if line) + "\n")
    return path


def log_hparams(
    run_dir: Path, flag_values: Mapping[str, Any], metrics: Mapping[str, float]
) -> None:
    """The run's flags and final metrics for TensorBoard's HParams tab, so `tensorboard
    --logdir runs` compares runs side by side."""
    from components.reporting.hparams import write_hparams

    write_hparams(run_dir / "tensorboard" / "hparams", run_dir.name, flag_values, metrics)


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
