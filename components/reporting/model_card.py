"""<run_dir>/model_card.md and model_card.json: what a finished pneumonia run is and is not.

After Mitchell et al., "Model Cards for Model Reporting" (2019): the data the model saw
(by split, class and acquisition batch), how it was trained (and whether it was adapted
to a site's unlabelled images, to which), its metrics with patient-
level intervals and per-slice figures, the decision threshold and how it was chosen,
the explanation checks' verdicts, library versions, intended use, and the limitations
this run itself measured. Built only from the run's own artifacts, at the end of a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from components.artifacts import read_json, write_json, write_text
from datasets.chest_xray_pneumonia.file_names import acquisition_batch

INTENDED_USE = (
    "Research and teaching: a reproducible baseline for chest X-ray classification "
    "(pneumonia, or the NIH findings with --task multilabel) and its explanations. Not a "
    "medical device; not validated for diagnosis, triage or any "
    "clinical decision."
)
HEADLINE = ("n", "accuracy", "auc", "sensitivity", "specificity", "ece")


def _read(path: Path) -> dict[str, Any]:
    return read_json(path) if path.is_file() else {}


def data_section(run_dir: Path) -> dict[str, Any]:
    """The card's data: source, images per split and class (per finding in a multi-label run),
    patients, acquisition batches per split, skipped files, ExampleGen's notes and its leakage-check
    summary."""
    stats = _read(run_dir / "example_gen" / "stats.json")
    frame = pd.read_csv(run_dir / "example_gen" / "examples.csv", keep_default_na=False)
    batches = frame["path"].map(lambda p: acquisition_batch(Path(p).name))
    by_batch = pd.crosstab(frame["split"], batches).to_dict(orient="index")
    return {
        "source": stats.get("source", ""),
        # A multi-label run's images per finding, not per combination of findings.
        "counts": stats.get("findings") or stats.get("counts", {}),
        "patients": stats.get("patients", {}),
        "acquisition_batches": {s: {b: int(n) for b, n in v.items()} for s, v in by_batch.items()},
        "skipped_files": stats.get("skipped_count", 0),
        "notes": stats.get("notes", []),
        # What the leakage checks removed or kept, why and how many (ExampleGen's words).
        "leakage": stats.get("leakage", {}).get("summary", []),
    }


def training_section(run_dir: Path) -> dict[str, Any]:
    """The card's training: the run's flags that shape the model (pipeline.json) and the Trainer's
    outputs, less the adaptation, which has its own section."""
    record = _read(run_dir / "pipeline.json")
    trainer = _read(run_dir / "trainer" / "metadata.json")
    flags = record.get("flags", {})
    keys = (
        "model",
        "weights",
        "image_size",
        "epochs",
        "batch_size",
        "learning_rate",
        "loss",
        "normalization",
        "acquisition_augmentation",
        "class_weights",
        "seed",
        "task",
    )
    outputs = dict(trainer.get("outputs", {}))
    outputs.pop("adaptation", None)  # a section of its own
    return {
        "settings": {k: flags[k] for k in keys if k in flags},
        "outputs": outputs,
    }


def adaptation_section(run_dir: Path) -> dict[str, Any] | None:
    """What the Trainer recorded about adapting to a site's unlabelled images, or None."""
    trainer = _read(run_dir / "trainer" / "metadata.json")
    return trainer.get("outputs", {}).get("adaptation")


def adaptation_markdown(adaptation: dict[str, Any] | None) -> list[str]:
    """The card's adaptation lines: none, not adapted (and why self-training stopped), or the site,
    rule, pseudo-label counts and validation AUC before and after."""
    if not adaptation:
        return ["None: the model learnt from the labelled training images only."]
    site = (
        f"the {adaptation['images']} unlabelled images of `{adaptation['folder']}` "
        f"(fingerprint {adaptation['fingerprint']}; no label was read, class folder names "
        "included)"
    )
    if not adaptation["adapted"]:
        return [
            f"Not adapted: self-training on {site} stopped at {adaptation['stopped']}. "
            "The model is the one trained on the labelled images only."
        ]
    pseudo = ", ".join(f"{name} {n}" for name, n in adaptation["pseudo_labels"].items())
    stopped = [f"- stopped early at {adaptation['stopped']}"] if adaptation["stopped"] else []
    return [
        f"Adapted, without labels, to {site}.",
        "",
        f"- method: {adaptation['method']}",
        f"- rule: {adaptation['rule']}",
        f"- fraction {adaptation['fraction']}, {adaptation['rounds']} round(s) of "
        f"{adaptation['epochs_per_round']} epochs at {adaptation['learning_rate_factor']} x "
        "the learning rate",
        f"- pseudo-labels (last round): {pseudo}",
        f"- validation AUC before -> after: {adaptation['val_auc_before']:.3f} -> "
        f"{adaptation['val_auc_after']:.3f}",
        *stopped,
    ]


def limitations(metrics: dict[str, Any], adaptation: dict[str, Any] | None = None) -> list[str]:
    """What this run measured about where it is weak (slices), plus the known shift."""
    found = [
        "Validation and the held-out test images come from the same hospital and "
        "acquisitions as training (split by patient); on a new acquisition accuracy is "
        "lower, mostly through normal images flagged as pneumonia (docs/benchmarks.md: "
        "'Generalizing to a new acquisition', benchmarks/shift.py).",
    ]
    for name, values in metrics.get("slices", {}).get("test", {}).items():
        for key in ("specificity", "sensitivity"):
            if values.get(key) is not None and values[key] < metrics["test"][key] - 0.05:
                found.append(
                    f"Test slice {name} (n={values['n']}): {key} {values[key]:.3f}, below the "
                    f"whole test split's {metrics['test'][key]:.3f}."
                )
    for name, values in metrics.get("test", {}).get("per_finding", {}).items():
        if not values["evaluable"]:
            found.append(
                f"{name}: no test figures ({values['reason']} among {values['n']} test images)."
            )
    if adaptation and adaptation["adapted"]:
        found.append(
            f"Adapted to the unlabelled images of {adaptation['folder']}: the figures above "
            "are on the training source's splits; what the adaptation does at that site "
            "is measured by evaluating there (pipelines.evaluate), and figures on those "
            "same images are transductive (the model has seen them, without labels)."
        )
    return found


def build_model_card(run_dir: Path) -> dict[str, Any]:
    """model_card.json's content, from the run folder's artifacts only: intended use, data,
    training, adaptation, threshold(s), metrics and slices per split, the explanations' checks,
    library versions and the limitations that follow from them."""
    metrics = _read(run_dir / "evaluator" / "metrics.json")
    explainer = _read(run_dir / "explainer" / "metadata.json").get("outputs", {})
    record = _read(run_dir / "pipeline.json")
    adaptation = adaptation_section(run_dir)
    return {
        "intended_use": INTENDED_USE,
        "data": data_section(run_dir),
        "training": training_section(run_dir),
        "adaptation": adaptation,
        "task": metrics.get("task", record.get("flags", {}).get("task", "binary")),
        "threshold": metrics.get("threshold"),
        "threshold_rule": metrics.get("threshold_rule"),
        **({"thresholds": metrics["thresholds"]} if "thresholds" in metrics else {}),
        "metrics": {s: metrics[s] for s in ("val", "test") if s in metrics},
        "slices": metrics.get("slices", {}),
        "explanations": {
            k: explainer[k]
            for k in ("heatmaps", "sanity_checks", "pointing_game", "shap_background")
            if k in explainer
        },
        "versions": record.get("versions", {}),
        "limitations": limitations(metrics, adaptation),
    }


def site_section(site: dict[str, Any]) -> dict[str, Any]:
    """What the card records of a site's recalibration (from its site.json)."""
    keys = ("site", "threshold", "threshold_rule", "calibration", "frozen_threshold")
    return {
        **{k: site.get(k) for k in keys},
        "test_at_site_threshold": site.get("test", {}),
        "test_at_frozen_threshold": site.get("frozen_test", {}),
    }


def write_site_model_card(run_dir: Path, training_run: Path, site: dict[str, Any]) -> Path:
    """The model card of the model as deployed at one site (pipelines.evaluate
    --calibration_dir): the training run's card, when the model sits in its run folder,
    with the site's operating point; in the evaluation's run folder, not the training's."""
    trained_here = (training_run / "example_gen" / "examples.csv").is_file()
    card = (
        build_model_card(training_run)
        if trained_here
        else {"intended_use": INTENDED_USE, "model": site.get("model")}
    )
    card["site"] = site_section(site)
    write_json(run_dir / "model_card.json", card)
    write_text(run_dir / "model_card.md", markdown(card))
    return run_dir / "model_card.md"


def site_markdown(site: dict[str, Any]) -> list[str]:
    """The card's section on a deployment site: the recalibrated threshold with its interval and
    calibration images, and the site's test metrics at that threshold beside the frozen one's."""
    calibration = site["calibration"] or {}
    low, high = calibration.get("threshold_ci95", [float("nan")] * 2)
    lines = [
        "",
        f"## Deployment site: {site['site']}",
        "",
        f"Operating point recalibrated at this site: threshold {site['threshold']:.3f} "
        f"(95% interval over resampled calibration patients [{low:.3f}, {high:.3f}]), chosen "
        f"by {calibration.get('rule')} on {calibration.get('n')} labelled site images "
        f"({calibration.get('normal')} NORMAL, {calibration.get('pneumonia')} PNEUMONIA) "
        f"from {calibration.get('dir')}; the frozen threshold was "
        + (f"{site['frozen_threshold']:.3f}." if site["frozen_threshold"] is not None else "none.")
        + " The site's other images, not the calibration ones:",
        "",
        "| threshold | " + " | ".join(HEADLINE[:-1]) + " |",
        "|---|" + "---|" * (len(HEADLINE) - 1),
    ]
    for name, values in (
        ("site", site["test_at_site_threshold"]),
        ("frozen", site["test_at_frozen_threshold"]),
    ):
        if values:
            lines.append(
                f"| {name} | " + " | ".join(_metric_cell(values, k) for k in HEADLINE[:-1]) + " |"
            )
    return lines


def _metric_cell(values: dict[str, Any], key: str) -> str:
    value = values.get(key)
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    interval = values.get(f"{key}_ci95")
    return f"{value:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")


FINDING_HEADLINE = ("auc", "average_precision", "sensitivity", "specificity")


def finding_markdown(card: dict[str, Any]) -> list[str]:
    """A multi-label run's performance: one row per finding and split, its threshold, and
    the macro and micro AUC; a finding with too few positives says so instead."""
    lines = [
        "",
        "## Performance",
        "",
        f"One decision threshold per finding ({card['threshold_rule']}); test metrics use "
        "them unchanged. Intervals: 95% bootstrap over patients.",
    ]
    for split, values in card["metrics"].items():
        lines += [
            "",
            f"{split}: {values['n']} images, macro AUC {_metric_cell(values, 'macro_auc')}, "
            f"micro AUC {_metric_cell(values, 'micro_auc')} (over "
            f"{len(values['evaluable_findings'])} findings with enough positive and negative images and patients)",
            "",
            "| finding | positives | threshold | " + " | ".join(FINDING_HEADLINE) + " |",
            "|---|---|---|" + "---|" * len(FINDING_HEADLINE),
        ]
        for name, m in values["per_finding"].items():
            cells = (
                [_metric_cell(m, k) for k in FINDING_HEADLINE]
                if m["evaluable"]
                else [m["reason"], *["-"] * (len(FINDING_HEADLINE) - 1)]
            )
            lines.append(
                f"| {name} | {m['n_positive']}/{m['n']} | {m['threshold']:.3f} | "
                + " | ".join(cells)
                + " |"
            )
    return lines


def performance_markdown(card: dict[str, Any]) -> list[str]:
    """A binary or three-class run's performance: the threshold and one row per split."""
    rule = card["threshold_rule"] or ""
    threshold = card["threshold"]
    lines = [
        "",
        "## Performance",
        "",
        f"Decision threshold: {threshold:.3f} ({rule}); test metrics use it unchanged. "
        "Intervals: 95% bootstrap over patients."
        if threshold is not None
        else f"Decision rule: {rule}.",
        "",
        "| split | " + " | ".join(HEADLINE) + " |",
        "|---|" + "---|" * len(HEADLINE),
    ]
    for split, values in card["metrics"].items():
        lines.append(f"| {split} | " + " | ".join(_metric_cell(values, k) for k in HEADLINE) + " |")
    return lines


def markdown(card: dict[str, Any]) -> str:
    """model_card.md: the card as Markdown, sections in model-card order; a card of a model outside
    a run folder (`pipelines.evaluate --calibration_dir` on a bare model) has only what the site
    measured."""
    multilabel = card.get("task") == "multilabel"
    lines = [
        "# Model card: chest X-ray findings (multi-label)"
        if multilabel
        else "# Model card: pneumonia from chest X-rays",
        "",
        "## Intended use",
        "",
        card["intended_use"],
    ]
    if "data" not in card:  # a model outside a run folder: only what the site measured
        return "\n".join(
            [*lines, "", f"Model: {card.get('model')}", *site_markdown(card["site"]), ""]
        )
    lines += ["", "## Data", ""]
    data = card["data"]
    lines += [f"Source: {data['source']}. Skipped files: {data['skipped_files']}.", ""]
    lines += ["| split | images by class | patients | acquisition batches |", "|---|---|---|---|"]
    for split, counts in data["counts"].items():
        batches = ", ".join(
            f"{b} {n}" for b, n in data["acquisition_batches"].get(split, {}).items()
        )
        classes = ", ".join(f"{c} {n}" for c, n in counts.items())
        lines.append(f"| {split} | {classes} | {data['patients'].get(split, '')} | {batches} |")
    lines += [f"- {note}" for note in data["notes"]]
    if data.get("leakage"):
        lines += ["", "Leakage checks (val/test against earlier splits):", ""]
        lines += [f"- {line}" for line in data["leakage"]]
    lines += ["", "## Model and training", ""]
    lines += [f"- {k}: {v}" for k, v in card["training"]["settings"].items()]
    lines += [f"- {k}: {v}" for k, v in card["training"]["outputs"].items()]
    lines += ["", "## Adaptation to a deployment site", ""]
    lines += adaptation_markdown(card.get("adaptation"))
    lines += finding_markdown(card) if multilabel else performance_markdown(card)
    for split, slices in card["slices"].items():
        lines += [
            "",
            f"Slices of {split}:",
            "",
            "| slice | " + " | ".join(HEADLINE) + " |",
            "|---|" + "---|" * len(HEADLINE),
        ]
        lines += [
            f"| {name} | " + " | ".join(_metric_cell(v, k) for k in HEADLINE) + " |"
            for name, v in slices.items()
        ]
    lines += ["", "## Explanations", ""]
    lines += [f"- {k}: {v}" for k, v in card["explanations"].items()] or ["- none"]
    if "site" in card:
        lines += site_markdown(card["site"])
    lines += ["", "## Limitations (measured)", "", *(f"- {x}" for x in card["limitations"])]
    lines += ["", "## Versions", "", ", ".join(f"{k} {v}" for k, v in card["versions"].items()), ""]
    return "\n".join(lines)


def write_model_card(run_dir: Path) -> Path:
    """model_card.json and model_card.md at the run folder's root; returns the .md path."""
    card = build_model_card(run_dir)
    write_json(run_dir / "model_card.json", card)
    write_text(run_dir / "model_card.md", markdown(card))
    return run_dir / "model_card.md"
