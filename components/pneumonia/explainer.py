"""Explainer: heatmaps for a fixed selection of test images, as PNGs and TensorBoard images.

Selection: a few true/false positives and negatives at the Evaluator's threshold, so a
reader sees what the model attends to when it is right and when it is wrong.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from components.artifacts import atomic_path, read_json, write_json
from components.explain.activations import activation_view
from components.explain.faithfulness import (
    deletion_insertion,
    faithfulness_report,
    plot_faithfulness,
)
from components.explain.localization import load_masks, localization_report
from components.explain.methods import (
    DEFAULT_IG_BASELINE,
    DEFAULT_METHODS,
    GRADIENT_METHODS,
    METHODS,
    method_options,
)
from components.explain.sanity_checks import data_randomization, sanity_report
from components.explain.scores import finding_model
from components.reporting.explanation_report import (
    write_explanation_report,
    write_multilabel_explanation_report,
)
from components.reporting.figures import log_images, overlay, save_figure
from components.saved_splits import load_spec, split_examples, split_images, split_sample
from components.trained_model import load_trained_model
from datasets.nih_chestxray14.findings import parse_lesion_masks
from models.training import float32_copy

OUTCOMES = ("true_positive", "true_negative", "false_positive", "false_negative")


def select_cases(predictions: pd.DataFrame, threshold: float, per_outcome: int) -> pd.DataFrame:
    """Up to `per_outcome` test images of each outcome, most confident first.

    Binary: flagged means score >= threshold. Three-class (a `predicted` column): flagged
    means a pneumonia class was predicted, so a confident NORMAL prediction is a true
    negative, not a "positive" by its high top score; the methods then explain the
    predicted class.
    """
    test = predictions[predictions["split"] == "test"].copy()
    positive = test["label"] != "NORMAL"
    if "predicted" in test:
        flagged = test["predicted"] != "NORMAL"
        threshold = 0.0  # confidence: the predicted class's probability
    else:
        flagged = test["score"] >= threshold
    test["outcome"] = np.select(
        [positive & flagged, ~positive & ~flagged, ~positive & flagged, positive & ~flagged],
        list(OUTCOMES),
        default="",
    )
    test["confidence"] = (test["score"] - threshold).abs()
    picked = (
        test.sort_values(["outcome", "confidence", "path"], ascending=[True, False, True])
        .groupby("outcome")
        .head(per_outcome)
    )
    return picked.reset_index(drop=True)


def case_images(examples: Path, transform: Path, paths: list[str]) -> np.ndarray:
    """The test images at `paths`, from the Transform's saved split: (n, size, size, 1) float."""
    position = {
        path: i for i, path in enumerate(split_examples(examples, transform, "test")["path"])
    }
    return split_images(transform, "test", [position[p] for p in paths]).astype("float32")


def plot_panel(image: np.ndarray, overlays: dict[str, np.ndarray], title: str):
    """original | one overlay per method, side by side, for one image."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(overlays) + 1, figsize=(2.6 * (len(overlays) + 1), 3.0))
    axes[0].imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
    axes[0].set_title("original", fontsize=9)
    for ax, (method, picture) in zip(axes[1:], overlays.items()):
        ax.imshow(picture)
        ax.set_title(method, fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return fig


def localization_cases(examples: Path, transform: Path, limit: int) -> pd.DataFrame:
    """Test pneumonia images with a known lesion mask (synthetic_cxr), at most `limit`."""
    frame = split_examples(examples, transform, "test")
    if "mask_path" not in frame:
        return frame.iloc[:0]
    test = frame[(frame["label"] != "NORMAL") & (frame["mask_path"] != "")]
    return test.sort_values("path").head(limit).reset_index(drop=True)


def scored_predictions(evaluator: Path) -> pd.DataFrame:
    """The Evaluator's predictions with one `score` column (three-class: the predicted class's)."""
    predictions = pd.read_csv(evaluator / "predictions.csv", keep_default_na=False)
    if "score" not in predictions:
        scores = [c for c in predictions if c.startswith("score_")]
        predictions["score"] = predictions[scores].max(axis=1)
    return predictions


def read_threshold(evaluator: Path) -> float:
    """The Evaluator's decision threshold (0.5 where it chose none: argmax tasks)."""
    return read_json(evaluator / "metrics.json")["threshold"] or 0.5


def write_overlays(
    folder: Path,
    names: list[str],
    images: np.ndarray,
    maps: np.ndarray,
    tensorboard_dir: Path | None,
    tag: str,
) -> np.ndarray:
    """One method's overlays as <folder>/<name>.png and one TensorBoard image summary."""
    overlays = np.stack([overlay(image, heatmap) for image, heatmap in zip(images, maps)])
    folder.mkdir(parents=True, exist_ok=True)
    for name, picture in zip(names, overlays):
        with atomic_path(folder / f"{name}.png") as tmp:
            Image.fromarray(picture).save(tmp, format="PNG")
    log_images(tensorboard_dir, tag, overlays, max_outputs=len(names))
    return overlays


def write_panels(
    folder: Path,
    cases: pd.DataFrame,
    names: list[str],
    images: np.ndarray,
    overlays: dict[str, np.ndarray],
    tensorboard_dir: Path | None,
) -> None:
    """original | every method's overlay, one panel per case."""
    folder.mkdir(exist_ok=True)
    for i, case in enumerate(cases.itertuples()):
        title = (
            f"{Path(case.path).name}: true {case.label}, score {case.score:.2f} "
            f"({case.outcome.replace('_', ' ')})"
        )
        save_figure(
            plot_panel(images[i], {m: picture[i] for m, picture in overlays.items()}, title),
            folder / f"{names[i]}.png",
            tensorboard_dir,
            "panels",
            step=i,
        )


def check_faithfulness(
    model: keras.Model,
    images: np.ndarray,
    maps: dict[str, np.ndarray],
    seed: int,
    out_dir: Path,
    tensorboard_dir: Path | None,
) -> dict[str, Any]:
    """Deletion and insertion curves per method: faithfulness.json and faithfulness.png."""
    curves = {m: deletion_insertion(model, images, maps[m], seed=seed) for m in maps}
    report = faithfulness_report(
        curves, steps=20, deletion_baseline="black", insertion_baseline="blurred"
    )
    write_json(out_dir / "faithfulness.json", report)
    plot_faithfulness(curves, out_dir / "faithfulness.png", tensorboard_dir)
    return report


def bound_methods(names, options: dict[str, dict]) -> dict[str, Any]:
    """name -> method(model, images) with its options bound (what the checks call)."""
    return {m: functools.partial(METHODS[m], **options.get(m, {})) for m in names}


def check_localization(
    model: keras.Model,
    examples: Path,
    transform: Path,
    methods: tuple[str, ...],
    limit: int,
    out_dir: Path,
    options: dict[str, dict],
) -> dict[str, Any] | None:
    """Pointing game, mask IoU and mass inside where lesion masks are known, with their
    chance levels: localization.json, or None."""
    lesions = localization_cases(examples, transform, limit)
    if not len(lesions):
        return None
    images = case_images(examples, transform, lesions["path"].tolist())
    masks = load_masks(lesions["mask_path"].tolist(), load_spec(transform)["image_size"])
    stems = [Path(p).stem for p in lesions["path"]]
    report = {
        m: localization_report(method(model, images), masks, names=stems)
        for m, method in bound_methods(methods, options).items()
    }
    write_json(out_dir / "localization.json", report)
    return report


def check_sanity(
    model: keras.Model,
    methods: dict[str, Any],
    transform: Path,
    seed: int,
    sanity_images: int,
    sanity_draws: int,
    data_randomization_images: int,
    data_randomization_epochs: int,
    out_dir: Path,
    tensorboard_dir: Path | None,
) -> dict[str, Any]:
    """Cascading model-parameter and data randomization of the gradient methods (with their
    options bound, as explained): sanity.json and sanity_cascading.png.

    Judged on a seeded sample of `sanity_images` test images (both classes, not only the
    few explained cases) over `sanity_draws` randomization draws each, and the verdict on
    the upper end of the draws' interval, so one lucky draw cannot pass a method. LIME,
    SHAP and occlusion cost minutes per randomized layer; the check is about the gradient
    methods, whose dependence on the weights it tests.
    """
    cheap = {m: f for m, f in methods.items() if m in GRADIENT_METHODS}
    images, _ = split_sample(transform, "test", sanity_images, seed)
    randomized_labels = None
    if data_randomization_images and cheap:
        train_images, train_labels = split_sample(
            transform, "train", data_randomization_images, seed
        )
        # clone_model: the same architecture with freshly initialized weights.
        randomized_labels = data_randomization(
            lambda: keras.models.clone_model(model),
            train_images,
            train_labels,
            images,
            cheap,
            epochs=data_randomization_epochs,
            seed=seed,
            draws=sanity_draws,
        )
    sanity = sanity_report(
        model,
        images,
        cheap,
        seed=seed,
        draws=sanity_draws,
        data_randomization_results=randomized_labels,
        png_path=out_dir / "sanity_cascading.png",
        tensorboard_dir=tensorboard_dir,
    )
    write_json(out_dir / "sanity.json", sanity)
    return sanity


def explain_cases(
    model: keras.Model,
    cases: pd.DataFrame,
    names: list[str],
    images: np.ndarray,
    methods: tuple[str, ...],
    options: dict[str, dict],
    progress: bool,
    out_dir: Path,
    tensorboard_dir: Path | None,
) -> dict[str, np.ndarray]:
    """Every method's maps of the cases, written as overlays (a folder a method) and as
    panels of all methods side by side; returns the maps by method."""
    maps: dict[str, np.ndarray] = {}
    overlays: dict[str, np.ndarray] = {}
    for method in tqdm(methods, desc="explaining", unit="method", disable=not progress):
        maps[method] = METHODS[method](model, images, **options.get(method, {}))
        overlays[method] = write_overlays(
            out_dir / method,
            names,
            images,
            maps[method],
            tensorboard_dir,
            f"{method}/test_overlays",
        )
    write_panels(out_dir / "panels", cases, names, images, overlays, tensorboard_dir)
    return maps


def method_settings(options: dict[str, dict], ig_baseline: str, seed: int) -> dict[str, Any]:
    """The outputs' record of the references the methods used: IG's baseline, SHAP's
    background sample."""
    result: dict[str, Any] = {}
    if "integrated_gradients" in options:
        result["ig_baseline"] = ig_baseline
    if "shap" in options:
        result["shap_background"] = {
            "split": "train",
            "images": len(options["shap"]["background"]),
            "seed": seed,
        }
    return result


def write_activations(
    model: keras.Model, image: np.ndarray, name: str, out_dir: Path, tensorboard_dir: Path | None
) -> dict[str, Any]:
    """What each conv block sees in one image (the intermediate-activation view):
    activations.png and activations.json."""
    activations = activation_view(
        model,
        image,
        out_dir / "activations.png",
        tensorboard_dir,
        title=f"Feature maps per conv block: {name}",
    )
    write_json(out_dir / "activations.json", activations)
    return activations


def multilabel_cases(
    predictions: pd.DataFrame, findings: list[str], images: int, top: int
) -> pd.DataFrame:
    """What a multi-label run explains: for each finding in turn, the test image labelled
    with it that scores highest on it (then the highest-scoring unlabelled-for-it one),
    until `images` images; each image for its `top` highest-scoring findings. One row
    per (image, finding): path, label, finding, score, name (`<stem>_<finding>`)."""
    test = predictions[predictions["split"] == "test"].reset_index(drop=True)
    scores = test[[f"score_{name}" for name in findings]].to_numpy()
    chosen: list[int] = []
    for j, name in enumerate(findings):
        if len(chosen) >= images:
            break
        has = test["label"].str.split("|").map(lambda labels, n=name: n in labels).to_numpy()
        for i in np.argsort(-scores[:, j] - has, kind="stable"):  # labelled ones first
            if i not in chosen:
                chosen.append(int(i))
                break
    rows = []
    for i in chosen:
        for j in np.argsort(-scores[i], kind="stable")[:top]:
            rows.append(
                {
                    "path": test.at[i, "path"],
                    "label": test.at[i, "label"],
                    "finding": findings[j],
                    "score": float(scores[i, j]),
                    "name": f"{Path(test.at[i, 'path']).stem}_{findings[j]}",
                }
            )
    return pd.DataFrame(rows, columns=["path", "label", "finding", "score", "name"])


def finding_lesions(
    examples: Path, transform: Path, finding: str, limit: int
) -> tuple[list[str], list[str]]:
    """(image paths, mask paths) of up to `limit` test images whose `lesion_masks` has
    one for `finding` (synthetic multi-label phantoms), sorted by path."""
    frame = split_examples(examples, transform, "test")
    if "lesion_masks" not in frame:
        return [], []
    found = [
        (path, masks[finding])
        for path, cell in zip(frame["path"], frame["lesion_masks"])
        if finding in (masks := parse_lesion_masks(cell))
    ]
    found = sorted(found)[:limit]
    return [p for p, _ in found], [m for _, m in found]


def explain_multilabel(
    out_dir: Path,
    *,
    examples: Path,
    transform: Path,
    trainer: Path,
    evaluator: Path,
    methods: tuple[str, ...],
    images: int,
    top_findings: int,
    localization_images: int,
    ig_baseline: str,
    seed: int,
    tensorboard_dir: Path | None,
) -> dict[str, Any]:
    """The Explainer of a multi-label run: every method per finding, on each explained
    image's `top_findings` highest-scoring findings (`multilabel_cases`), through the
    finding's own binary view of the model (scores.finding_model); overlays
    explainer/<method>/<stem>_<finding>.png, TensorBoard images per method and finding,
    cases.json, report.html; localization.json per method and finding where lesion
    masks are known, beside chance."""
    spec = load_spec(transform)
    findings = spec["class_names"]
    cases = multilabel_cases(
        pd.read_csv(evaluator / "predictions.csv", keep_default_na=False),
        findings,
        images,
        top_findings,
    )
    model = float32_copy(load_trained_model(trainer))
    explainers = bound_methods(methods, method_options(methods, transform, seed, ig_baseline))
    views = {name: finding_model(model, j) for j, name in enumerate(findings)}
    for finding, group in cases.groupby("finding", sort=False):
        pictures = case_images(examples, transform, group["path"].tolist())
        for method, explain in explainers.items():
            maps = explain(views[finding], pictures)
            write_overlays(
                out_dir / method,
                group["name"].tolist(),
                pictures,
                maps,
                tensorboard_dir,
                f"{method}/{finding}",
            )
    localization: dict[str, dict[str, Any]] = {}
    for finding in findings:
        paths, mask_paths = finding_lesions(examples, transform, finding, localization_images)
        if not paths:
            continue
        pictures = case_images(examples, transform, paths)
        masks = load_masks(mask_paths, spec["image_size"])
        for method, explain in explainers.items():
            localization.setdefault(method, {})[finding] = localization_report(
                explain(views[finding], pictures), masks, names=[Path(p).stem for p in paths]
            )
    if localization:
        write_json(out_dir / "localization.json", localization)
    write_json(out_dir / "cases.json", cases.to_dict(orient="records"))
    write_multilabel_explanation_report(out_dir, cases, methods, localization or None)
    result: dict[str, Any] = {
        "heatmaps": {m: len(cases) for m in methods},
        "explained": cases[["name", "finding"]].to_dict(orient="records"),
        "report": "report.html",
    }
    if localization:
        result["pointing_game"] = {
            m: {f: r["pointing_game"] for f, r in by_finding.items()}
            for m, by_finding in localization.items()
        }
    return result


def run(
    out_dir: Path,
    *,
    examples: Path,
    transform: Path,
    trainer: Path,
    evaluator: Path,
    methods: tuple[str, ...] = DEFAULT_METHODS,
    per_outcome: int = 2,
    faithfulness: bool = True,
    sanity_checks: bool = False,
    sanity_images: int = 32,
    sanity_draws: int = 3,
    ig_baseline: str = DEFAULT_IG_BASELINE,
    data_randomization_images: int = 256,
    data_randomization_epochs: int = 10,
    localization_images: int = 64,
    multilabel_images: int = 6,
    top_findings: int = 2,
    seed: int = 42,
    progress: bool = False,
    tensorboard_dir: Path | None = None,
) -> dict[str, Any]:
    """The Explainer component.

    Writes explainer/<method>/*.png overlays and panels/*.png (original | every method)
    for a fixed selection of test cases, all also as TensorBoard images; faithfulness.json
    (deletion/insertion against random order); localization.json where lesion masks are
    known (synthetic_cxr), beside their chance levels; sanity.json with `sanity_checks`
    (cascading randomization, and data randomization: the same architecture trained from
    scratch on a seeded sample of `data_randomization_images` training images, with true
    and with permuted labels, for `data_randomization_epochs` epochs each), over
    `sanity_images` seeded test images and `sanity_draws` draws; report.html with all of
    it. `ig_baseline` (integrated_gradients.BASELINES) is IG's reference input; "blur"
    localized best on synthetic_cxr and passes both randomization checks
    (benchmarks/ig_baselines.py, docs/benchmarks.md). A multi-label run explains
    `multilabel_images` test images for their `top_findings` findings each, per finding
    (`explain_multilabel`; no faithfulness or sanity checks there).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown explanation method(s) {unknown}; available: {sorted(METHODS)}")
    if load_spec(transform)["task"] == "multilabel":
        return explain_multilabel(
            out_dir,
            examples=examples,
            transform=transform,
            trainer=trainer,
            evaluator=evaluator,
            methods=methods,
            images=multilabel_images,
            top_findings=top_findings,
            localization_images=localization_images,
            ig_baseline=ig_baseline,
            seed=seed,
            tensorboard_dir=tensorboard_dir,
        )
    cases = select_cases(scored_predictions(evaluator), read_threshold(evaluator), per_outcome)
    # Explained in float32 whatever the training precision (models/training.float32_copy).
    model = float32_copy(load_trained_model(trainer))
    images = case_images(examples, transform, cases["path"].tolist())
    names = [f"{case.outcome}_{Path(case.path).stem}" for case in cases.itertuples()]
    options = method_options(methods, transform, seed, ig_baseline)
    maps = explain_cases(
        model, cases, names, images, methods, options, progress, out_dir, tensorboard_dir
    )
    result: dict[str, Any] = {
        "heatmaps": {m: len(names) for m in methods},
        **method_settings(options, ig_baseline, seed),
    }
    faithfulness_json = sanity = None
    if faithfulness:
        faithfulness_json = check_faithfulness(model, images, maps, seed, out_dir, tensorboard_dir)
        result["faithfulness"] = {
            m: {k: v[k] for k in ("deletion_gain", "insertion_gain")}
            for m, v in faithfulness_json["methods"].items()
        }
    localization_json = check_localization(
        model, examples, transform, methods, localization_images, out_dir, options
    )
    if localization_json:
        result["pointing_game"] = {m: r["pointing_game"] for m, r in localization_json.items()}
    if sanity_checks:
        sanity = check_sanity(
            model,
            bound_methods(methods, options),
            transform,
            seed,
            sanity_images,
            sanity_draws,
            data_randomization_images,
            data_randomization_epochs,
            out_dir,
            tensorboard_dir,
        )
        result["sanity_checks"] = {m: s["passes"] for m, s in sanity["summary"].items()}
    write_json(out_dir / "cases.json", cases.drop(columns="confidence").to_dict(orient="records"))
    activations = write_activations(model, images[0], names[0], out_dir, tensorboard_dir)
    write_explanation_report(
        out_dir, cases, names, faithfulness_json, localization_json, sanity, activations
    )
    result["report"] = "report.html"
    return result
