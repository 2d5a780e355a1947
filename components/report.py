"""evaluator/report.html: one self-contained page (images embedded) a reviewer opens from disk."""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from components.artifacts import write_text

METRIC_ROWS = ("n", "accuracy", "balanced_accuracy", "auc", "auc_ci95", "sensitivity",
               "sensitivity_ci95", "specificity", "specificity_ci95", "precision", "f1",
               "pr_auc", "brier", "ece", "auc_macro", "auc_micro", "f1_macro")


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, float) for v in value):
        return f"[{value[0]:.3f}, {value[1]:.3f}]"
    return html.escape(str(value))


def metrics_table(metrics: dict[str, Any], splits: tuple[str, ...]) -> str:
    header = "".join(f"<th>{s}</th>" for s in splits)
    rows = []
    for key in METRIC_ROWS:
        if any(key in metrics.get(s, {}) for s in splits):
            cells = "".join(f"<td>{_format(metrics.get(s, {}).get(key, ''))}</td>" for s in splits)
            rows.append(f"<tr><th>{key}</th>{cells}</tr>")
    return f"<table><tr><th>metric</th>{header}</tr>{''.join(rows)}</table>"


def embedded_image(png: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode()
    return (f'<figure><img alt="{html.escape(png.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(png.stem.replace('_', ' '))}</figcaption></figure>")


def write_report(path: Path, title: str, metrics: dict[str, Any], stats: dict[str, Any],
                 flags: dict[str, Any], pictures: list[Path]) -> None:
    threshold = metrics.get("threshold")
    rule = metrics.get("threshold_rule", "")
    threshold_line = (f"<p>Decision threshold <b>{threshold:.3f}</b> ({html.escape(rule)}); "
                      "test metrics use it unchanged.</p>" if threshold is not None else "")
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1200px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; }}
img {{ max-width: 560px; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{threshold_line}
<h2>Metrics</h2>
{metrics_table(metrics, tuple(s for s in ("val", "test") if s in metrics))}
<h2>Plots and galleries</h2>
{''.join(embedded_image(p) for p in pictures if p.exists())}
<h2>Data</h2>
<pre>{html.escape(json.dumps({k: v for k, v in stats.items() if k != "skipped"}, indent=1))}</pre>
<h2>Run flags</h2>
<pre>{html.escape(json.dumps(flags, indent=1, sort_keys=True))}</pre>
</body></html>
"""
    write_text(path, body)
