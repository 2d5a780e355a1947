"""Every `python -m pipelines.<name> ...` line in README.md parses against the real flags."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def readme_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    fenced = re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S)
    blocks = [body for language, body in fenced if language in ("", "bash", "sh")]
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                if "python -m pipelines." in part:
                    commands.append(part.strip())
    return commands


def test_readme_has_pipeline_commands():
    modules = {shlex.split(c)[2] for c in readme_commands()}
    assert {"pipelines.pneumonia", "pipelines.evaluate"} <= modules


@pytest.mark.parametrize("module", sorted({shlex.split(c)[2] for c in readme_commands()}))
def test_readme_commands_parse(module, tmp_path):
    """One interpreter per entry point parses each of its README command lines in turn.

    A `--flagfile=<run_dir>/flags.txt` names a run the reader made; here it is an empty
    file (tests/test_reproducibility.py reruns a real one)."""
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text("")

    def args(command: str) -> list[str]:
        return [
            f"--flagfile={flagfile}" if a.startswith("--flagfile=") else a
            for a in shlex.split(command)[3:]
        ]

    argvs = [[module] + args(c) for c in readme_commands() if shlex.split(c)[2] == module]
    probe = (
        f"import {module}\nfrom absl import flags\n"
        f"for argv in {argvs!r}:\n"
        "    flags.FLAGS.unparse_flags()\n"
        "    flags.FLAGS(argv)\n"
        "    print('parsed', argv)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("parsed") == len(argvs)
