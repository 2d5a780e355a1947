"""README.md and the docs/ pages it links: every `python -m pipelines.<name> ...` line in
their command blocks parses against the real flags; the README stays short, with a contents
list, and every link in README.md and docs/*.md reaches an existing file and heading."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
README_MAX_BYTES = 16_000


def pages() -> list[Path]:
    """README.md and every Markdown page in docs/."""
    return [README, *sorted((REPO_ROOT / "docs").glob("*.md"))]


def page_commands(page: Path) -> list[str]:
    """The `python -m pipelines.` commands of a page's shell blocks, one per line or `&&` part."""
    fenced = re.findall(r"```(\w*)\n(.*?)```", page.read_text(), flags=re.S)
    blocks = [body for language, body in fenced if language in ("", "bash", "sh")]
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                if "python -m pipelines." in part:
                    commands.append(part.strip())
    return commands


def readme_commands() -> list[str]:
    """The commands of README.md and of every docs/ page."""
    return [command for page in pages() for command in page_commands(page)]


def test_readme_has_pipeline_commands():
    modules = {shlex.split(c)[2] for c in page_commands(README)}
    assert {"pipelines.pneumonia", "pipelines.evaluate"} <= modules


def test_docs_pages_commands_are_read_too():
    """Commands that live only in docs/ pages (distributed training, the heart options) are
    among the ones parsed below."""
    docs_only = set(readme_commands()) - set(page_commands(README))
    assert any("--strategy multi_worker" in c for c in docs_only), docs_only
    assert any(c.startswith("python -m pipelines.heart --cv") for c in docs_only), docs_only


@pytest.mark.parametrize("module", sorted({shlex.split(c)[2] for c in readme_commands()}))
def test_readme_commands_parse(module, tmp_path):
    """One interpreter per entry point parses each of its README and docs/ command lines in
    turn.

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


def without_code(text: str) -> str:
    """Markdown text without its fenced blocks (a `#` there is a comment, not a heading)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path, level: str = "#{1,6}") -> set[str]:
    """A page's heading anchors (a repeated heading numbered, as GitHub does)."""
    seen: dict[str, int] = {}
    result = set()
    for heading in re.findall(rf"^{level} +(.+?) *$", without_code(page.read_text()), re.M):
        anchor = slug(heading)
        result.add(anchor if anchor not in seen else f"{anchor}-{seen[anchor]}")
        seen[anchor] = seen.get(anchor, 0) + 1
    return result


def links(page: Path) -> list[str]:
    """The targets of a page's Markdown links and images, outside code."""
    text = re.sub(r"`[^`\n]*`", "", without_code(page.read_text()))
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_readme_is_short_with_a_contents_list():
    text = README.read_text()
    size = len(text.encode())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; at most {README_MAX_BYTES}"
    contents = re.search(r"^## Contents\n\n((?:- \[.+\]\(#.+\)\n)+)", text, re.M)
    assert contents, "README.md has no '## Contents' list of links to its sections"
    listed = set(re.findall(r"\(#(.+?)\)", contents.group(1)))
    sections = anchors(README, level="##") - {"contents"}
    assert listed == sections, f"contents list {sorted(listed)} != sections {sorted(sections)}"


def test_readme_links_the_docs_pages_and_they_exist():
    linked = {t.split("#")[0] for t in links(README) if t.startswith("docs/")}
    pages_linked = {t for t in linked if t.endswith(".md")}
    assert "docs/ARCHITECTURE.md" in pages_linked
    assert len(pages_linked) >= 5, pages_linked
    missing = sorted(t for t in linked if not (REPO_ROOT / t).is_file())
    assert not missing, f"README.md links missing files: {missing}"


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_link_reaches_a_file_and_heading(page):
    """Relative links of README.md and docs/*.md: the file exists and, with `#anchor`, has
    that heading (web links are not followed)."""
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    assert not broken, broken
