"""What every entry point shares: absl's app.run with help that exits 0, one line for bad
input or a bug, logging to the run folder, the run's flag file, and its HParams summary."""

from __future__ import annotations

import hashlib
import logging as std_logging
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from absl import app, flags

from components.artifacts import read_json, write_text
from components.errors import DataError
from pipelines.runner import StepError, check_same_flags, first_line

FLAGFILE = "flags.txt"
# Exit codes a script can tell apart: bad input (flags, data, a model file) or a bug.
BAD_INPUT, BUG = 2, 1

flags.DEFINE_boolean(
    "debug",
    False,
    "Show on the terminal too what goes to the run's log only: an unexpected error's "
    "traceback, Python warnings, other libraries' log lines (TF_CPP_MIN_LOG_LEVEL=0 too).",
)


def exit_code_of(main: Callable[[], int | None]) -> int:
    """Runs `main` and turns how it ended into the exit code, with one line on stderr.

    Bad input (DataError) says what to fix: exit 2. Anything else is a bug: one line
    naming the step and the error and where its traceback is (the run's log), exit 1;
    the terminal shows the traceback only when asked (`show_everything`). The run's log
    is closed at the end, so one process may run entry points one after another.
    """
    try:
        return int(main() or 0)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT
    except Exception as error:  # a bug: the traceback goes to a file, not the terminal
        log = write_traceback(error)
        print(f"error: {describe(error)} (a bug; traceback in {log})", file=sys.stderr)
        if show_everything():
            traceback.print_exception(error)
        return BUG
    finally:
        stop_logging_to_run_folder()


def describe(error: Exception) -> str:
    """One line: the step and its error (a StepError says both), else the error alone."""
    if isinstance(error, StepError):
        return str(error)
    return f"unexpected {type(error).__name__}: {first_line(error)}"


def show_everything() -> bool:
    """--debug, or TF_CPP_MIN_LOG_LEVEL=0 (the user asked to see everything): tracebacks
    and every library's log lines on the terminal, not only in the run's log."""
    return bool(flags.FLAGS["debug"].value) or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0"


def write_traceback(error: Exception) -> Path:
    """Appends `error`'s traceback to the run's log and returns its path; a new temporary
    file when the error came before there was a log (loading a model), so none is lost."""
    logs = _run_logs()
    if not logs:
        handle, name = tempfile.mkstemp(prefix="pipelines-error-", suffix=".log")
        with os.fdopen(handle, "w") as file:
            file.write("".join(traceback.format_exception(error)))
        return Path(name)
    record = std_logging.getLogger("pipelines").makeRecord(
        "pipelines",
        std_logging.ERROR,
        __file__,
        0,
        "%s",
        (describe(error),),
        (type(error), error, error.__traceback__),
    )
    for handler in logs:
        handler.handle(record)
    return Path(logs[0].baseFilename)


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


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing (app.run's `flags_parser`), except that a bad flag value (an
    unknown flag, a bound or a validator) is bad input like any other: one line, exit 2
    (absl itself prints two lines and exits 1). Runs before anything else."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        message = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"error: {message} (--helpshort lists the flags)", file=sys.stderr)
        sys.exit(BAD_INPUT)


def run(main: Callable[..., int | None], *, arguments: bool = False) -> None:
    """What `python -m pipelines.<name>` runs: absl's app.run with help that exits 0.

    `arguments`: `main` takes the positional arguments (predict's paths); otherwise a
    positional argument is bad input.
    """
    define_help_flags()
    app.run(absl_entry(main, arguments), flags_parser=parse_flags)


def absl_entry(
    main: Callable[..., int | None], arguments: bool = False
) -> Callable[[list[str]], None]:
    """The function for absl's app.run: stray arguments, bad input and bugs as one line."""

    def call(argv: list[str]) -> int | None:
        if arguments:
            return main(argv[1:])
        if len(argv) > 1:
            raise DataError(f"unexpected arguments: {' '.join(argv[1:])} (flags are --name value)")
        return main()

    def entry(argv: list[str]) -> None:
        sys.exit(exit_code_of(lambda: call(argv)))

    return entry


class _RunLog(std_logging.FileHandler):
    """The run's log file (a class of its own, so it is told from other handlers)."""


# The project's own code (beside this package, installed or not): what logs through absl
# from there is the steps' progress.
_OWN_CODE = tuple(
    os.path.join(os.path.realpath(Path(__file__).parents[1]), name, "")
    for name in ("benchmarks", "components", "datasets", "models", "pipelines")
)


class _OwnLinesOnly(std_logging.Filter):
    """On the terminal's handlers while a run logs to its folder: the project's own absl
    lines (the steps' progress, our warnings) pass; Python warnings and other libraries'
    records (pydicom's tracebacks, TensorFlow's lines, its own absl ones included) go to
    the run's log only."""

    def filter(self, record: std_logging.LogRecord) -> bool:
        return record.name == "absl" and os.path.realpath(record.pathname).startswith(_OWN_CODE)


_OWN_LINES_ONLY = _OwnLinesOnly()


def _terminal_handlers() -> list[std_logging.Handler]:
    """absl's handler on the root logger, and TensorFlow's stream handler (its Python
    logger prints to stderr itself, besides propagating to the root)."""
    candidates = std_logging.getLogger().handlers + std_logging.getLogger("tensorflow").handlers
    return [h for h in candidates if not isinstance(h, std_logging.FileHandler)]


def _run_logs() -> list[_RunLog]:
    return [h for h in std_logging.getLogger().handlers if isinstance(h, _RunLog)]


def log_to_run_folder(run_dir: Path, name: str = "run") -> Path:
    """<run_dir>/<name>.log takes every log record from now on, and the traceback of an
    unexpected error (`exit_code_of`). The terminal keeps the project's own absl lines;
    Python warnings and other libraries' records (TensorFlow's absl lines included) go
    to the log only, unless `show_everything`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / f"{name}.log"
    handler = _RunLog(os.fspath(path))
    handler.setFormatter(std_logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    std_logging.getLogger().addHandler(handler)  # the root: every logger propagates to it
    std_logging.captureWarnings(True)
    if not show_everything():
        for terminal in _terminal_handlers():
            terminal.addFilter(_OWN_LINES_ONLY)
    return path


def stop_logging_to_run_folder() -> None:
    """Closes the run's log and gives the terminal back every record (undoes the above)."""
    root = std_logging.getLogger()
    for handler in _run_logs():
        root.removeHandler(handler)
        handler.close()
    for terminal in _terminal_handlers():
        terminal.removeFilter(_OWN_LINES_ONLY)
    std_logging.captureWarnings(False)


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
        if "per_finding" in m:  # a multi-label run
            macro, micro = m["macro_auc"], m["micro_auc"]
            lines.append(
                f"  {split:4s} n={m['n']:4d}  macro AUC "
                + (f"{macro:.3f}  micro AUC {micro:.3f}" if macro is not None else "-")
                + f" over {len(m['evaluable_findings'])} of {len(m['per_finding'])} findings"
                + (
                    " (the others: too few positives, negatives or patients)"
                    if len(m["evaluable_findings"]) < len(m["per_finding"])
                    else ""
                )
            )
        elif "auc_ci95" in m:
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
