"""Predictor: a trained model on new, unlabelled chest X-rays (`python -m pipelines.predict`).

Each image is decoded exactly as the Transform decodes training and test images
(components/images.py: JPEG, PNG, BMP, GIF, 8/16 bit, DICOM), scored by the run's model,
labelled at the run's validation threshold (argmax for three classes), and explained by
Grad-CAM (or the `--explain` methods). A multi-label run's images get a score per finding,
the findings at their own thresholds as label ("Effusion|Mass", "No Finding"), and maps of
their highest-scoring finding. Writes into `out_dir`: predictions.csv (path,
score, label, reason for a skipped file), <method>/<n>-<name>.png overlays, predict.json
(model, threshold and where it came from, counts) and report.html, one self-contained
page sorted by score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from PIL import Image
from tqdm import tqdm

from components.artifacts import atomic_path, write_csv, write_json
from components.errors import DataError
from components.explain.methods import DEFAULT_IG_BASELINE, METHODS, method_options
from components.explain.scores import finding_model
from components.images import check_image, decode_problem, decoded_files, is_dicom_file
from components.reporting import html_page
from components.reporting.figures import overlay
from components.trained_model import load_keras_model
from datasets.chest_xray_pneumonia import file_names
from datasets.nih_chestxray14.findings import finding_string
from models.training import float32_copy

# Overlays embedded in the page (all are written as PNGs): a page of thousands of
# base64 images would not open; the table lists every image.
PAGE_IMAGES = 100


def _candidates(path: Path) -> list[Path]:
    """A folder's files (every one below it, sorted; hidden files such as .DS_Store left
    out), or the file itself."""
    if path.is_dir():
        return sorted(
            p for p in path.rglob("*") if p.is_file() and not file_names.is_hidden(p.name)
        )
    return [path]


def _image_like(path: Path) -> bool:
    """An image file by its name, or a DICOM file by its marker (often without suffix)."""
    return file_names.has_image_suffix(path.name) or is_dicom_file(path)


def _missing(path: Path) -> bool:
    return not (path.exists() or path.is_symlink())


def check_paths(paths: list[str]) -> None:
    """A DataError when `paths` hold no file that could be an image at all (each missing,
    or folders without image files), so pipelines.predict stops before writing anything.
    Cheap: names and DICOM markers only; `image_files` then checks each file."""
    problems = []
    for given in paths:
        path = Path(given)
        if _missing(path):
            problems.append(f"{given}: no such file or folder")
        elif any(_image_like(candidate) for candidate in _candidates(path)):
            return
        else:
            problems.append(f"{given}: no image files (JPEG, PNG, BMP, GIF or DICOM)")
    raise DataError("nothing to score; " + "; ".join(problems))


def image_files(paths: list[str]) -> tuple[list[Path], list[dict[str, str]]]:
    """The files to score, in the order given (folders: every file below, sorted), and
    what cannot be scored with the reason."""
    found: list[Path] = []
    skipped: list[dict[str, str]] = []
    for given in paths:
        path = Path(given)
        if _missing(path):
            skipped.append({"path": given, "reason": "no such file or folder"})
            continue
        for candidate in _candidates(path):
            problem = (None if _image_like(candidate) else "not an image file") or check_image(
                candidate
            )
            if problem:
                skipped.append({"path": str(candidate), "reason": problem})
            else:
                found.append(candidate)
    return found, skipped


def decode_batches(files: list[Path], image_size: int, batch_size: int, progress: bool):
    """(positions, images float32 (n, s, s, 1)) batches of the files that decode."""
    if not files:  # every file was skipped: no dataset to make (it would hold floats)
        return
    ds = decoded_files([str(p) for p in files], image_size).batch(batch_size)
    with tqdm(total=len(files), desc="scoring", unit="image", disable=not progress) as bar:
        for images, positions in ds.as_numpy_iterator():
            bar.update(len(positions))
            yield positions, images.astype("float32")


def labels_for(
    scores: np.ndarray,
    threshold: float | None,
    class_names: list[str],
    finding_thresholds: dict[str, float] | None = None,
) -> list[str]:
    """Class names at the threshold or by argmax; a multi-label model's present findings."""
    if finding_thresholds is not None:
        cut = np.array([finding_thresholds[name] for name in class_names])
        return [
            finding_string([n for n, present in zip(class_names, row >= cut) if present])
            for row in scores
        ]
    if scores.ndim == 1:
        return [class_names[int(s >= threshold)] for s in scores]
    return [class_names[i] for i in scores.argmax(axis=1)]


def explain(
    model: keras.Model,
    images: np.ndarray,
    methods: tuple[str, ...],
    options: dict[str, dict],
    findings: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Each method's maps; `findings` (a multi-label model): the finding index each image
    is explained for, through that finding's view of the model."""
    if findings is None:
        return {m: METHODS[m](model, images, **options.get(m, {})) for m in methods}
    maps = {m: np.zeros(images.shape[:3], dtype="float32") for m in methods}
    for k in np.unique(findings):
        view, chosen = finding_model(model, int(k)), findings == k
        for m in methods:
            maps[m][chosen] = METHODS[m](view, images[chosen], **options.get(m, {}))
    return maps


def write_overlay(path: Path, image: np.ndarray, heatmap: np.ndarray) -> None:
    """Writes the heatmap over the image (`reporting.figures.overlay`) as a PNG at `path`,
    atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(overlay(image, heatmap)).save(tmp, format="PNG")


def overlay_name(position: int, path: Path) -> str:
    """An overlay's file name: the image's position in the input list (so names are unique and sort
    in input order) and its stem, cut to 60 characters."""
    return f"{position:05d}-{path.stem[:60]}.png"


def write_page(
    out_dir: Path,
    predictions: pd.DataFrame,
    methods: tuple[str, ...],
    info: dict[str, Any],
) -> Path:
    """report.html: the scored images by descending score with their labels, the rule that labelled
    them (threshold and its source) and the first `PAGE_IMAGES` overlays per method, then the
    skipped files and why. Returns the page's path."""
    scored = predictions[predictions["reason"] == ""].sort_values("score", ascending=False)
    rows = []
    for rank, row in enumerate(scored.itertuples()):
        pictures = (
            "".join(
                html_page.image(out_dir / m / row.overlay, m) if rank < PAGE_IMAGES else ""
                for m in methods
            )
            or "-"
        )
        rows.append([Path(row.path).name, f"{row.score:.3f}", row.label, pictures])
    threshold = info["threshold"]
    if info.get("finding_thresholds"):
        cuts = ", ".join(f"{k} {v:.3f}" for k, v in info["finding_thresholds"].items())
        rule = (
            f"Label: every finding whose score reaches its own threshold ({cuts}; "
            f"{info['threshold_source']}), else No Finding; the score shown is the highest "
            "finding's, and the maps explain that finding."
        )
    elif threshold is not None:
        rule = f"Label PNEUMONIA when the score is at least {threshold:.3f} ({info['threshold_source']})."
    else:
        rule = "Label: the class with the highest score."
    skipped = predictions[predictions["reason"] != ""]
    page = out_dir / "report.html"
    html_page.write_report(
        page,
        "Pneumonia classifier: predictions",
        [
            html_page.paragraph(
                f"{len(scored)} images scored by {info['model']}, sorted by score. {rule} "
                f"Overlays: {', '.join(methods) or 'none'}"
                + (f" (the first {PAGE_IMAGES} shown here)." if len(scored) > PAGE_IMAGES else ".")
            ),
            html_page.paragraph(
                "For research: not a medical device. A score is the model's output on this "
                "image alone, calibrated only as far as the model card says.",
                note=True,
            ),
            html_page.section(
                "Scored images",
                html_page.table(
                    ["image", "score", "label", "where the model looked"], rows, markup=True
                )
                if rows
                else "",
            ),
            html_page.section(
                f"Skipped files ({len(skipped)})",
                html_page.table(["file", "reason"], skipped[["path", "reason"]].to_numpy())
                if len(skipped)
                else html_page.paragraph("none"),
            ),
        ],
    )
    return page


def run(
    out_dir: Path,
    *,
    model_path: str,
    paths: list[str],
    threshold: float | None,
    threshold_source: str,
    class_names: list[str],
    methods: tuple[str, ...] = ("gradcam",),
    transform_dir: str | None = None,
    ig_baseline: str = DEFAULT_IG_BASELINE,
    batch_size: int = 32,
    seed: int = 42,
    progress: bool = False,
    finding_thresholds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Scores `paths` (files or folders) with the model at `model_path`
    (`finding_thresholds`: a multi-label model's, one per finding of `class_names`)."""
    model = load_keras_model(Path(model_path))
    image_size = int(model.inputs[0].shape[1])
    # The Explainer's options (IG's baseline, SHAP's background): the run's maps.
    options = method_options(
        methods, Path(transform_dir) if transform_dir else None, seed, ig_baseline
    )
    files, skipped = image_files(paths)
    scores: dict[int, np.ndarray] = {}
    # One traced function for every batch: model.predict sets up its data adapter on each
    # call, which costs more than the forward pass of a single image.
    score = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    # Scores come from the model as saved; explanations, as in the Explainer, in float32.
    explained = float32_copy(model) if methods else model
    for positions, images in decode_batches(files, image_size, batch_size, progress):
        batch_scores = score(tf.constant(images)).numpy()
        batch_scores = batch_scores[:, 0] if batch_scores.shape[-1] == 1 else batch_scores
        top = batch_scores.argmax(axis=1) if finding_thresholds is not None else None
        for method, maps in explain(explained, images, methods, options, top).items():
            for position, image, heatmap in zip(positions, images, maps):
                name = overlay_name(int(position), files[position])
                write_overlay(out_dir / method / name, image, heatmap)
        scores.update(zip(positions.tolist(), batch_scores))
    lost = [i for i in range(len(files)) if i not in scores]
    skipped += [
        {"path": str(files[i]), "reason": decode_problem(str(files[i]), image_size)} for i in lost
    ]
    order = sorted(scores)
    table = pd.DataFrame(
        {
            "path": [str(files[i]) for i in order],
            "score": [float(np.max(scores[i])) for i in order],
            "label": labels_for(
                np.array([scores[i] for i in order]), threshold, class_names, finding_thresholds
            )
            if order
            else [],
            "reason": "",
            "overlay": [overlay_name(i, files[i]) for i in order],
        }
    )
    if order and np.ndim(scores[order[0]]) == 1:
        for k, name in enumerate(class_names):
            table[f"score_{name}"] = [float(scores[i][k]) for i in order]
    if order and finding_thresholds is not None:  # what the overlays explain
        table["explained_finding"] = [class_names[int(np.argmax(scores[i]))] for i in order]
    table = pd.concat(
        [table, pd.DataFrame(skipped, columns=["path", "reason"]).assign(score=np.nan, label="")],
        ignore_index=True,
    ).fillna({"overlay": ""})
    write_csv(out_dir / "predictions.csv", table)
    info = {
        "model": model_path,
        "threshold": threshold,
        "threshold_source": threshold_source,
        "class_names": class_names,
        **({"finding_thresholds": finding_thresholds} if finding_thresholds else {}),
        "image_size": image_size,
        "methods": list(methods),
        "scored": len(order),
        "skipped": len(skipped),
    }
    write_json(out_dir / "predict.json", info)
    page = write_page(out_dir, table, methods, info)
    return {**info, "predictions": str(out_dir / "predictions.csv"), "page": str(page)}
