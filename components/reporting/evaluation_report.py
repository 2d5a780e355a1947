"""evaluator/report.html: one self-contained page (images embedded) a reviewer opens from disk."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from components.reporting import html_page

METRIC_ROWS = (
    "n",
    "accuracy",
    "balanced_accuracy",
    "auc",
    "auc_ci95",
    "sensitivity",
    "sensitivity_ci95",
    "specificity",
    "specificity_ci95",
    "precision",
    "f1",
    "pr_auc",
    "brier",
    "ece",
    "auc_macro",
    "auc_micro",
    "f1_macro",
)
# Plots side by side, two to a row.
STYLE = "figure { max-width: 560px; }"


def metrics_table(metrics: dict[str, Any], splits: tuple[str, ...]) -> str:
    rows = [
        [key, *(html_page.fmt(metrics.get(s, {}).get(key, "")) for s in splits)]
        for key in METRIC_ROWS
        if any(key in metrics.get(s, {}) for s in splits)
    ]
    return html_page.table(["metric", *splits], rows)


SLICE_COLUMNS = (
    "n",
    "positives",
    "accuracy",
    "auc",
    "sensitivity",
    "sensitivity_ci95",
    "specificity",
    "specificity_ci95",
    "mean_score",
)


def slices_table(slices: dict[str, dict[str, Any]]) -> str:
    """One row a slice (batch=NORMAL2, pathogen=virus, source=official_val, ...); "-" where
    a slice of one class has no such figure."""
    rows = [
        [name, *("-" if values.get(k) is None else html_page.fmt(values[k]) for k in SLICE_COLUMNS)]
        for name, values in slices.items()
    ]
    return html_page.table(["slice", *SLICE_COLUMNS], rows)


def write_evaluation_report(
    path: Path,
    title: str,
    metrics: dict[str, Any],
    stats: dict[str, Any],
    flags: dict[str, Any],
    pictures: list[Path],
) -> None:
    threshold = metrics.get("threshold")
    rule = metrics.get("threshold_rule", "")
    threshold_line = (
        f"<p>Decision threshold <b>{threshold:.3f}</b> ({html.escape(rule)}); "
        "test metrics use it unchanged.</p>"
        if threshold is not None
        else ""
    )
    html_page.write_report(
        path,
        title,
        [
            threshold_line,
            html_page.section(
                "Metrics", metrics_table(metrics, tuple(s for s in ("val", "test") if s in metrics))
            ),
            *(
                html_page.section(f"Slices of {split}", slices_table(slices))
                for split, slices in metrics.get("slices", {}).items()
            ),
            html_page.section(
                "Plots and galleries",
                "".join(html_page.image(p, p.stem.replace("_", " ")) for p in pictures),
            ),
            html_page.section(
                "Data",
                html_page.preformatted(
                    json.dumps({k: v for k, v in stats.items() if k != "skipped"}, indent=1)
                ),
            ),
            html_page.section(
                "Run flags", html_page.preformatted(json.dumps(flags, indent=1, sort_keys=True))
            ),
        ],
        style=STYLE,
    )
