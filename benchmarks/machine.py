"""What a benchmark prints about the machine it ran on: timings differ between an Intel CPU
with AMX and an AMD EPYC without it, so every timing names the CPU."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (elsewhere what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The headless browser the page checks use (tests, benchmarks, docs), or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None
