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
    """The table of `METRIC_ROWS` (rows) for each of `splits` (columns); a metric no split has is
    left out."""
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


def shift_section(shift: dict[str, Any]) -> str:
    """The shift report: verdict and rule, the tests, the flagged shares, each folder."""
    if shift.get("drift_detected") is None:
        return html_page.section(
            "Shift from the training run's validation images",
            html_page.paragraph(f"Not compared: {shift.get('reason', '')}."),
        )
    verdict = (
        f"<b>Drift detected</b> ({', '.join(shift['shifted_tests'])})"
        if shift["drift_detected"]
        else "<b>No drift detected</b>"
    )
    tests = [*shift["tests"], shift["image_statistics_test"]]
    rows = [
        [
            t["test"],
            t["method"],
            f"{t['n_reference']} / {t['n_new']}",
            html_page.fmt(t["p_value"], 4),
            f"{t['effect_name']} {html_page.fmt(t['effect'])} (floor {t['effect_floor']})",
            ("yes" if t["shifted"] else "no") if "shifted" in t else "described only",
        ]
        for t in tests
    ]
    flagged = shift["flagged_share"]
    folders = [
        [
            values["side"],
            html.escape(folder),
            values["n"],
            f"{values['stored_width_median']:.0f} x {values['stored_height_median']:.0f}",
            html_page.fmt(values["mean_intensity"], 1),
            html_page.fmt(values["mean_contrast"], 1),
            html_page.fmt(values["median_sharpness"], 1),
            html_page.fmt(values["border_mean"], 1),
        ]
        for folder, values in shift["folders"].items()
    ]
    return html_page.section(
        "Shift from the training run's validation images",
        f"<p>{verdict} against {html.escape(shift['reference'])}. Rule, fixed in advance: "
        f"{html.escape(shift['rule'])}. Flagged at threshold {shift['threshold']:.3f}: "
        f"{flagged['new']:.1%} of these images, {flagged['reference']:.1%} of validation's.</p>",
        html_page.table(
            ["test", "method", "n (validation / here)", "p-value", "effect", "shifted"], rows
        ),
        html_page.table(
            [
                "side",
                "folder",
                "images",
                "stored size (median)",
                "mean intensity",
                "contrast (sd)",
                "sharpness (median var. of Laplacian)",
                "border mean",
            ],
            folders,
        ),
    )


def site_section(metrics: dict[str, Any]) -> str:
    """Site calibration: the chosen operating point beside the frozen one, same images."""
    calibration = metrics["calibration"]
    low, high = calibration["threshold_ci95"]
    frozen = metrics.get("frozen", {})
    rows = [
        ["site_calibrated", html_page.fmt(metrics["threshold"]), *_headline(metrics["test"])],
    ]
    if frozen:
        rows.append(
            [
                f"frozen ({html.escape(str(frozen.get('threshold_source')))})",
                html_page.fmt(frozen["threshold"]),
                *_headline(frozen["test"]),
            ]
        )
    return html_page.section(
        "Site calibration",
        html_page.paragraph(
            f"Threshold chosen by {calibration['rule']} on {calibration['n']} labelled "
            f"calibration images ({calibration['normal']} NORMAL, {calibration['pneumonia']} "
            f"PNEUMONIA, {calibration['dir']}): {metrics['threshold']:.3f}, 95% interval over "
            f"resampled calibration patients [{low:.3f}, {high:.3f}]. The calibration images "
            "are not among the images below."
        ),
        html_page.table(["threshold", "value", *SITE_COLUMNS], rows),
    )


SITE_COLUMNS = ("n", "accuracy", "sensitivity", "specificity", "auc")


def _headline(values: dict[str, Any]) -> list[str]:
    return [html_page.fmt(values.get(k, "")) for k in SITE_COLUMNS]


def unlabelled_section(metrics: dict[str, Any]) -> str:
    """The section of an unlabelled folder's evaluation: how many images, how many flagged as
    pneumonia, the mean score, and why there are no metrics."""
    found = metrics["unlabelled"]
    return html_page.section(
        "Scores (no labels)",
        html_page.paragraph(
            f"{found['n']} images without NORMAL/ and PNEUMONIA/ folders: no metrics. "
            f"{found['flagged']} flagged as pneumonia ({found['flagged_share']:.1%}); mean "
            f"score {found['mean_score']:.3f}. Scores per image: predictions.csv."
        ),
    )


def write_evaluation_report(
    path: Path,
    title: str,
    metrics: dict[str, Any],
    stats: dict[str, Any],
    flags: dict[str, Any],
    pictures: list[Path],
    shift: dict[str, Any] | None = None,
) -> None:
    """evaluator/report.html: the threshold and its rule, the site calibration or unlabelled summary
    where present, metrics and slices per split, the shift report, the `pictures`, and the data's
    stats and run flags."""
    threshold = metrics.get("threshold")
    rule = metrics.get("threshold_rule", "")
    threshold_line = (
        f"<p>Decision threshold <b>{threshold:.3f}</b> ({html.escape(rule)}); "
        "test metrics use it unchanged.</p>"
        if threshold is not None
        else ""
    )
    splits = tuple(s for s in ("val", "test") if s in metrics)
    html_page.write_report(
        path,
        title,
        [
            threshold_line,
            site_section(metrics) if "calibration" in metrics else "",
            unlabelled_section(metrics) if "unlabelled" in metrics else "",
            html_page.section("Metrics", metrics_table(metrics, splits)) if splits else "",
            *(
                html_page.section(f"Slices of {split}", slices_table(slices))
                for split, slices in metrics.get("slices", {}).items()
            ),
            shift_section(shift) if shift is not None else "",
            html_page.section(
                "Plots and galleries",
                "".join(html_page.image(p, p.stem.replace("_", " ")) for p in pictures),
            ),
            *data_and_flags(stats, flags),
        ],
        style=STYLE,
    )


def data_and_flags(stats: dict[str, Any], flags: dict[str, Any]) -> list[str]:
    """An evaluation page's last sections: ExampleGen's stats.json (less the skipped files)
    and the run's flags."""
    return [
        html_page.section(
            "Data",
            html_page.preformatted(
                json.dumps({k: v for k, v in stats.items() if k != "skipped"}, indent=1)
            ),
        ),
        html_page.section(
            "Run flags", html_page.preformatted(json.dumps(flags, indent=1, sort_keys=True))
        ),
    ]
