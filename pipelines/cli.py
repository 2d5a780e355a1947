"""What every entry point shares: one clear line for bad input, absl logging to a file."""
from __future__ import annotations

import logging as std_logging
import os
import sys
from pathlib import Path
from typing import Callable

from absl import logging

from components.errors import DataError


def exit_on_data_error(main: Callable[[], int | None]) -> int:
    """Runs `main`; a DataError becomes one line on stderr and exit code 2 (no traceback)."""
    try:
        return int(main() or 0)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def log_to_run_folder(run_dir: Path, name: str = "run") -> None:
    """Also writes absl logs to <run_dir>/<name>.log (one log file per run)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = std_logging.FileHandler(os.fspath(run_dir / f"{name}.log"))
    handler.setFormatter(std_logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.get_absl_logger().addHandler(handler)
