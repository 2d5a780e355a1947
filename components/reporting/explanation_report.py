"""explainer/report.html: what the Explainer found and how far to trust it, on one page.

Panels per image, then the evidence about the maps themselves: faithfulness (deletion /
insertion against a random order), localization where lesion masks are known, and the
sanity checks with a pass or FAIL verdict per method, so a failing method is never hidden.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from components.reporting import html_page

STYLE = ".panel img { max-width: 1150px; }"


def verdict(passes: bool | None) -> str:
    """A sanity check's verdict as HTML: passes, FAILS (highlighted), or none when the model has no
    layer to randomize."""
    if passes is None:
        return "no verdict (no randomizable layer)"
    return '<span class="pass">passes</span>' if passes else '<span class="fail">FAILS</span>'


def cases_section(cases: pd.DataFrame, names: list[str], out_dir: Path) -> str:
    """The explained test images (true/false positives and negatives at the threshold) as a table,
    and their panels (original and every method's heatmap) from `out_dir/panels/`."""
    rows = [
        [Path(c.path).name, c.label, html_page.fmt(float(c.score)), c.outcome.replace("_", " ")]
        for c in cases.itertuples()
    ]
    panels = "".join(
        f'<div class="panel">{html_page.image(out_dir / "panels" / f"{n}.png")}</div>'
        for n in names
    )
    return html_page.section(
        "Explained test images",
        html_page.paragraph(
            "The most confident true/false positives and negatives at the "
            "Evaluator's threshold; each panel shows the original and every "
            "method's heatmap (red: most important for the explained class)."
        ),
        html_page.table(["image", "true label", "score", "outcome"], rows),
        panels,
    )


def faithfulness_section(report: dict[str, Any], out_dir: Path) -> str:
    """Deletion and insertion areas per method beside those of a random pixel order, and the share
    of images where the map beats random, with the curves (faithfulness.png)."""
    rows = [
        [
            method,
            html_page.fmt(m["deletion_auc"]),
            html_page.fmt(m["random_deletion_auc"]),
            html_page.fmt(m["deletion_beats_random"], 2),
            html_page.fmt(m["insertion_auc"]),
            html_page.fmt(m["random_insertion_auc"]),
            html_page.fmt(m["insertion_beats_random"], 2),
        ]
        for method, m in report["methods"].items()
    ]
    return html_page.section(
        "Faithfulness: deletion and insertion",
        html_page.paragraph(
            "Pixels are removed (deletion, lower area is better) or restored "
            "(insertion, higher is better) in the order the map ranks them, "
            "against the same curves in random order. A map that does not "
            "beat random order does not show what the model uses."
        ),
        html_page.table(
            [
                "method",
                "deletion AUC",
                "random",
                "images beating random",
                "insertion AUC",
                "random",
                "images beating random",
            ],
            rows,
        ),
        html_page.image(out_dir / "faithfulness.png", "deletion and insertion curves"),
    )


def localization_section(report: dict[str, Any]) -> str:
    """Pointing game (with and without tolerance), heat mass inside the lesion and IoU per method
    against the lesion masks, each beside a random map's figure: chance is not zero."""
    rows = []
    for method, r in report.items():
        chance = r.get("chance") or {}
        random_map = chance.get("random_map") or {}
        rows.append(
            [
                method,
                html_page.fmt(r["pointing_game"]),
                html_page.fmt(random_map.get("pointing_game")),
                html_page.fmt(r.get("pointing_game_no_tolerance")),
                html_page.fmt(random_map.get("pointing_game_no_tolerance")),
                html_page.fmt(r["mean_mass_inside"]),
                html_page.fmt(random_map.get("mean_mass_inside")),
                html_page.fmt(chance.get("mask_area_fraction")),
                html_page.fmt(r["mean_iou"]),
                r["n_counted"],
            ]
        )
    tolerance = next(iter(report.values()))["tolerance_px"]
    return html_page.section(
        "Localization against the known lesion masks (synthetic_cxr)",
        html_page.paragraph(
            f"Pointing game: a hit when the map's maximum lies within {tolerance:.1f} px "
            "of the lesion (Zhang et al.'s 15 px at 224 px, scaled to the image), and "
            "without tolerance (the peak pixel is a lesion pixel). Heat mass inside: the "
            "share of the map's total inside the lesion. Each beside a map of uniform "
            "noise on the same masks (chance), and the lesions' share of the image, "
            "which is also the chance level of mass inside and of the tolerance-free game."
        ),
        html_page.table(
            [
                "method",
                "pointing game",
                "random map",
                "no tolerance",
                "random map",
                "mass inside",
                "random map",
                "mask area",
                "mean IoU",
                "images",
            ],
            rows,
        ),
    )


def interval(values: list[float] | None) -> str:
    """An interval as "[low, high]" to 3 places; empty when there is none."""
    return "" if not values else f"[{values[0]:.3f}, {values[1]:.3f}]"


def cascading_table(report: dict[str, Any]) -> str:
    """The cascading curve as numbers: one row per randomized layer, one column per method."""
    methods = list(report["cascading"])
    steps = report["cascading"][methods[0]] if methods else []
    rows = [
        [step["layer"]]
        + [
            f"{html_page.fmt(report['cascading'][m][i]['spearman'])} "
            f"{interval(report['cascading'][m][i].get('spearman_interval'))}"
            for m in methods
        ]
        for i, step in enumerate(steps)
    ]
    return html_page.table(["randomized down to layer"] + methods, rows)


def sanity_section(report: dict[str, Any] | None, out_dir: Path) -> str:
    """The sanity checks (Adebayo et al., 2018): per method, the Spearman and SSIM between the
    trained and randomized models' maps, the interval over draws and the verdict; or a note that
    they were not run."""
    if report is None:
        return html_page.section(
            "Sanity checks",
            html_page.paragraph(
                "Not run: add --sanity_checks to test whether the maps depend on the learned "
                "weights and labels (Adebayo et al., 2018)."
            ),
        )
    threshold = report["pass_threshold_spearman"]
    draws = report.get("draws", 1)
    rows = [
        [
            method,
            html_page.fmt(s["final_spearman"]),
            interval(s.get("final_spearman_interval")),
            html_page.fmt(s["final_ssim"]),
            verdict(s["passes"]),
        ]
        for method, s in report["summary"].items()
    ]
    parts = [
        html_page.paragraph(
            f"{report['reference']}. Over {report['n_images']} test images and {draws} "
            "draws of the random weights (or labels): a method passes when its maps from "
            f"the randomized model correlate below {threshold} (Spearman) with the "
            "trained model's maps in every draw, i.e. the upper end of the interval "
            "(min, max over draws) is below it; a map that survives randomization is not "
            "explaining what the model learned."
        ),
        "<h3>Cascading model-parameter randomization</h3>",
        html_page.table(
            [
                "method",
                "Spearman, fully randomized",
                "interval over draws",
                "SSIM, fully randomized",
                "verdict",
            ],
            rows,
            markup=True,
        ),
        html_page.paragraph(
            "The cascading curve, layer by layer from the top: mean Spearman over draws [min, max]."
        ),
        cascading_table(report),
        html_page.image(out_dir / "sanity_cascading.png", "similarity as layers are randomized"),
    ]
    data = report.get("data_randomization")
    if data:
        rows = [
            [
                method,
                html_page.fmt(m["spearman"]),
                interval(m.get("spearman_interval")),
                html_page.fmt(m["ssim"]),
                verdict(m["passes"]),
            ]
            for method, m in data["methods"].items()
        ]
        parts += [
            "<h3>Data randomization</h3>",
            html_page.paragraph(
                f"The same architecture trained for {data['epochs']} epochs on "
                f"{data['n_train']} training images, once with the true labels (train accuracy "
                f"{data['true_label_train_accuracy']:.2f}) and {data.get('draws', 1)} times "
                "with permuted labels (mean train accuracy on them "
                f"{data['random_label_train_accuracy']:.2f}); maps of "
                f"{data['n_eval']} test images compared. The test says more the better the "
                "permuted-label model fits its labels."
            ),
            html_page.table(
                ["method", "Spearman", "interval over draws", "SSIM", "verdict"],
                rows,
                markup=True,
            ),
        ]
    return html_page.section("Sanity checks", *parts)


def activations_section(summary: dict[str, Any], out_dir: Path) -> str:
    """Per conv block: output shape, mean activation and the share of zero (dead) activations, with
    the picture of the most active channels."""
    rows = [
        [
            b["layer"],
            " x ".join(map(str, b["shape"])),
            html_page.fmt(b["mean_activation"]),
            html_page.fmt(b["dead_fraction"], 2),
        ]
        for b in summary["blocks"]
    ]
    return html_page.section(
        "Feature maps per conv block",
        html_page.paragraph(
            "The most active channels of each block for the first image above: "
            "early blocks respond to edges and texture, later ones to larger "
            "regions. A block with mostly zero (dead) activations is a warning."
        ),
        html_page.table(
            ["block output", "map (h x w x channels)", "mean activation", "zero fraction"], rows
        ),
        f'<div class="panel">{html_page.image(out_dir / Path(summary["png"]).name)}</div>',
    )


def write_explanation_report(
    out_dir: Path,
    cases: pd.DataFrame,
    names: list[str],
    faithfulness: dict[str, Any] | None,
    localization: dict[str, Any] | None,
    sanity: dict[str, Any] | None,
    activations: dict[str, Any] | None = None,
) -> Path:
    """Writes out_dir/report.html from the Explainer's outputs; returns its path."""
    sections = [cases_section(cases, names, out_dir)]
    if faithfulness:
        sections.append(faithfulness_section(faithfulness, out_dir))
    if localization:
        sections.append(localization_section(localization))
    sections.append(sanity_section(sanity, out_dir))
    if activations:
        sections.append(activations_section(activations, out_dir))
    path = out_dir / "report.html"
    html_page.write_report(path, "Pneumonia classifier: explanations", sections, style=STYLE)
    return path


def write_multilabel_explanation_report(
    out_dir: Path,
    cases: pd.DataFrame,
    methods: Sequence[str],
    localization: dict[str, Any] | None,
) -> Path:
    """explainer/report.html of a multi-label run: each explained image's top findings,
    one overlay per method and finding, and the localization per finding where lesion
    masks are known (synthetic phantoms), beside chance."""
    rows = []
    for case in cases.itertuples():
        pictures = "".join(html_page.image(out_dir / m / f"{case.name}.png", m) for m in methods)
        rows.append(
            [
                html.escape(Path(case.path).name),
                html.escape(case.label),
                html.escape(case.finding),
                f"{case.score:.3f}",
                pictures,
            ]
        )
    sections = [
        html_page.paragraph(
            "Each image is explained for its highest-scoring findings, each finding's map "
            "made from that finding's own sigmoid (the head's other units left out)."
        ),
        html_page.section(
            "Maps per finding",
            html_page.table(
                ["image", "labels", "explained finding", "score", "maps"], rows, markup=True
            ),
        ),
    ]
    if localization:
        loc_rows = [
            [
                method,
                finding,
                report["n_counted"],
                html_page.fmt(report["pointing_game"]),
                html_page.fmt((report["chance"]["random_map"] or {}).get("pointing_game")),
                html_page.fmt(report["mean_mass_inside"]),
                html_page.fmt(report["chance"]["mask_area_fraction"]),
            ]
            for method, by_finding in localization.items()
            for finding, report in by_finding.items()
        ]
        sections.append(
            html_page.section(
                "Localization per finding (known lesion masks)",
                html_page.table(
                    [
                        "method",
                        "finding",
                        "images",
                        "pointing game",
                        "chance (random map)",
                        "mass inside",
                        "chance (mask area)",
                    ],
                    loc_rows,
                ),
            )
        )
    path = out_dir / "report.html"
    html_page.write_report(
        path, "Chest X-ray findings (multi-label): explanations", sections, style=STYLE
    )
    return path
