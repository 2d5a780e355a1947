"""evaluator/report.html of a multi-label run: the per-finding table beside CheXNet's AUCs.

CheXNet's figures are a published reference point, not a comparison: Rajpurkar et al.
(2017), "CheXNet: Radiologist-Level Pneumonia Detection on Chest X-Rays with Deep
Learning", arXiv:1711.05225, Table 2 (DenseNet-121 at 224 px on ChestX-ray14's 112,120
images); the page says the data and scale differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.reporting import html_page
from components.reporting.evaluation_report import data_and_flags

# Rajpurkar et al. 2017 (arXiv:1711.05225v3), Table 2, column "CheXNet": test AUROC per
# finding, DenseNet-121 trained on ChestX-ray14 at 224x224 px.
CHEXNET_AUC = {
    "Atelectasis": 0.8094,
    "Cardiomegaly": 0.9248,
    "Effusion": 0.8638,
    "Infiltration": 0.7345,
    "Mass": 0.8676,
    "Nodule": 0.7802,
    "Pneumonia": 0.7680,
    "Pneumothorax": 0.8887,
    "Consolidation": 0.7901,
    "Edema": 0.8878,
    "Emphysema": 0.9371,
    "Fibrosis": 0.8047,
    "Pleural_Thickening": 0.8062,
    "Hernia": 0.9164,
}
CHEXNET_CITATION = (
    "CheXNet: Rajpurkar et al. 2017, arXiv:1711.05225, Table 2 (DenseNet-121 at 224 px "
    "trained on all 112,120 ChestX-ray14 images). A reference point only: other data, "
    "another split, another image size and another scale of training; the figures are "
    "not comparable with this run's."
)
FINDING_COLUMNS = (
    "finding",
    "positives / n",
    "AUC [95% CI]",
    "average precision [95% CI]",
    "threshold",
    "sensitivity [95% CI]",
    "specificity [95% CI]",
    "CheXNet AUC (reference)",
)


def _with_interval(values: dict[str, Any], key: str) -> str:
    interval = values.get(f"{key}_ci95")
    text = html_page.fmt(values[key])
    return f"{text} {html_page.fmt(interval)}" if interval else text


def finding_rows(split: dict[str, Any]) -> list[list[str]]:
    """One row per finding; a finding with too few positives shows why, not a number."""
    rows = []
    for name, values in split["per_finding"].items():
        counts = f"{values['n_positive']} / {values['n']}"
        reference = html_page.fmt(CHEXNET_AUC.get(name, "-"), 3)
        if not values["evaluable"]:
            rows.append(
                [
                    name,
                    counts,
                    values["reason"],
                    "-",
                    html_page.fmt(values["threshold"]),
                    "-",
                    "-",
                    reference,
                ]
            )
            continue
        rows.append(
            [
                name,
                counts,
                _with_interval(values, "auc"),
                _with_interval(values, "average_precision"),
                html_page.fmt(values["threshold"]),
                _with_interval(values, "sensitivity"),
                _with_interval(values, "specificity"),
                reference,
            ]
        )
    return rows


def split_section(name: str, split: dict[str, Any]) -> str:
    """A split's section of the multi-label report: macro and micro AUC over the evaluable findings
    (or why there is none), then the per-finding table."""
    macro, micro = split.get("macro_auc"), split.get("micro_auc")
    summary = (
        f"{split['n']} images. Macro AUC {html_page.fmt(macro)}, micro AUC "
        f"{html_page.fmt(micro)}, over the {len(split['evaluable_findings'])} findings with "
        "enough positive and negative images and patients here."
        if macro is not None
        else f"{split['n']} images; no finding has enough positive and negative images and patients here for an AUC."
    )
    return html_page.section(
        f"Per finding: {name}",
        html_page.paragraph(summary),
        html_page.table(FINDING_COLUMNS, finding_rows(split)),
    )


def write_multilabel_report(
    path: Path,
    metrics: dict[str, Any],
    stats: dict[str, Any],
    flags: dict[str, Any],
    pictures: list[Path],
) -> None:
    """The page: thresholds and how they were chosen, per-finding tables per split with
    CheXNet's AUCs beside, plots, the data and the flags."""
    rule = metrics["threshold_rule"]
    splits = [s for s in ("test", "val") if s in metrics]
    html_page.write_report(
        path,
        "Chest X-ray findings (multi-label): evaluation",
        [
            html_page.paragraph(
                f"One threshold per finding ({rule}); test metrics use them unchanged. "
                "Intervals resample patients (percentile bootstrap). Sensitivity and "
                "specificity are at each finding's threshold."
            ),
            *(split_section(s, metrics[s]) for s in splits),
            html_page.paragraph(CHEXNET_CITATION, note=True),
            "" if splits else html_page.paragraph("No labels: scores in predictions.csv."),
            html_page.section(
                "Plots", "".join(html_page.image(p, p.stem.replace("_", " ")) for p in pictures)
            ),
            *data_and_flags(stats, flags),
        ],
    )
