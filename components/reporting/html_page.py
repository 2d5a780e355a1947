"""Self-contained HTML pages for every report (evaluation, EDA, explanations, heart):
tables, sections and base64-embedded PNGs under one style sheet.

A report is one file that can be mailed or archived: no external images or scripts.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Iterable, Sequence

from components.artifacts import write_text

STYLE = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; max-width: 100%; }
img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
.note { color: #555; font-size: 0.9em; }
.pass { color: #1a7f37; font-weight: bold; }
.fail { color: #cf222e; font-weight: bold; }
"""


def image(png: Path, caption: str | None = None) -> str:
    """An <img> with the PNG embedded as base64; empty if the file does not exist."""
    if not png.exists():
        return ""
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    alt = html.escape(caption or png.stem)
    figcaption = f"<figcaption>{alt}</figcaption>" if caption else ""
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">{figcaption}</figure>'


def table(header: Sequence[str], rows: Iterable[Sequence[object]], markup: bool = False) -> str:
    """An HTML table; cells are escaped unless `markup` (cells the caller built as HTML)."""
    cell = str if markup else (lambda value: html.escape(str(value)))
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def section(title: str, *parts: str) -> str:
    """An <h2> title followed by the non-empty `parts` (HTML already)."""
    return f"<h2>{html.escape(title)}</h2>\n" + "\n".join(p for p in parts if p)


def paragraph(text: str, note: bool = False) -> str:
    """`text` escaped as a paragraph; `note` styles it as a caution."""
    css = ' class="note"' if note else ""
    return f"<p{css}>{html.escape(text)}</p>"


def link(href: str, text: str) -> str:
    """A paragraph holding a link to `href` (a path relative to the page) showing `text`."""
    return f'<p><a href="{html.escape(href)}">{html.escape(text)}</a></p>'


def fmt(value: object, digits: int = 3) -> str:
    """A number to `digits` decimals; a [low, high] pair as an interval; else str()."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"[{fmt(value[0], digits)}, {fmt(value[1], digits)}]"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def preformatted(text: str) -> str:
    """`text` escaped in a <pre> block: JSON and flags shown as they are."""
    return f"<pre>{html.escape(text)}</pre>"


def write_report(path: Path, title: str, sections: Sequence[str], style: str = "") -> None:
    """One page: the shared STYLE plus `style` (page-specific rules), a title, the sections."""
    page = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}{style}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>\n" + "\n".join(sections) + "\n</body></html>\n"
    )
    write_text(path, page)
