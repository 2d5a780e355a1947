"""Self-contained HTML reports for the heart pipeline: tables and base64-embedded PNGs.

A report is one file that can be mailed or archived: no external images or scripts.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Iterable, Sequence

from components.artifacts import write_text

# One colour per model in every plot of the run.
MODEL_COLORS = {"lasso": "tab:green", "mlp": "tab:purple", "nam": "tab:orange"}

STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #555; font-size: 0.9em; }
"""


def image(png: Path, caption: str | None = None) -> str:
    """An <img> with the PNG embedded as base64; empty if the file does not exist."""
    if not png.exists():
        return ""
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    alt = html.escape(caption or png.stem)
    figcaption = f"<figcaption>{alt}</figcaption>" if caption else ""
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">{figcaption}</figure>'


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def section(title: str, *parts: str) -> str:
    return f"<h2>{html.escape(title)}</h2>\n" + "\n".join(p for p in parts if p)


def paragraph(text: str, note: bool = False) -> str:
    css = ' class="note"' if note else ""
    return f"<p{css}>{html.escape(text)}</p>"


def link(href: str, text: str) -> str:
    return f'<p><a href="{html.escape(href)}">{html.escape(text)}</a></p>'


def fmt(value: object, digits: int = 3) -> str:
    """A number to `digits` decimals; a [low, high] pair as an interval; else str()."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"[{fmt(value[0], digits)}, {fmt(value[1], digits)}]"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def write_report(path: Path, title: str, sections: Sequence[str]) -> None:
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n"
            + "\n".join(sections) + "\n</body></html>\n")
    write_text(path, page)
