"""Transform: examples table -> decoded, resized images saved per split, and the input fn.

The component decodes every image once (parallel tf.data map through components/images.py:
JPEG/PNG/BMP/GIF, 8 or 16 bit, and DICOM -> one grayscale channel), resizes to `image_size`, and
saves each split with `tf.data.Dataset.save`, so the Trainer, Evaluator and Explainer
never decode again (with `adapt_to`, also the deployment site's unlabelled images, as the
split "adapt"); components/saved_splits.py reads them back (`input_fn`: cache, seeded
shuffle, batch, augmentation with Keras preprocessing layers on whole batches, prefetch).

Models take one grayscale channel of float pixels in [0, 255]; each model scales (and
replicates to RGB for ImageNet backbones) itself, so a saved model accepts raw pixels.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf
from absl import logging
from tqdm import tqdm

from components.artifacts import SPLITS, file_sha256, fingerprint, write_csv, write_json
from components.augmentation import DEFAULT_ACQUISITION
from components.errors import DataError
from components.images import check_image, decode_file, decode_problem, image_files_below
from components.reporting.figures import log_images
from components.saved_splits import ADAPT_SPLIT, UNLABELLED, input_fn
from datasets.nih_chestxray14.findings import MULTILABEL_FINDINGS, multi_hot, multilabel_findings

AUTOTUNE = tf.data.AUTOTUNE
CLASS_NAMES = {"binary": ["NORMAL", "PNEUMONIA"], "three_class": ["NORMAL", "BACTERIA", "VIRUS"]}
TASKS = (*CLASS_NAMES, "multilabel")


def findings_in_training(frame: pd.DataFrame) -> list[str]:
    """The findings a multi-label model gets a sigmoid for: those with at least one
    training image, in NIH's order (a finding never seen in training cannot be learnt)."""
    train = frame.loc[frame["split"] == "train", "label"]
    seen = {name for label in train for name in multilabel_findings(label)}
    return [name for name in MULTILABEL_FINDINGS if name in seen]


def class_index(frame: pd.DataFrame, task: str) -> np.ndarray:
    """Integer labels: NORMAL/PNEUMONIA, or NORMAL/BACTERIA/VIRUS from the pathogen column;
    -1 for an image without a label (pipelines.evaluate on an unlabelled folder). A
    multi-label task's labels come from `multi_hot` instead."""
    unlabelled = (frame["label"] == "").to_numpy()
    if task == "binary":
        labels = (frame["label"] == "PNEUMONIA").to_numpy(np.int32)
    elif task == "three_class":
        lookup = {"normal": 0, "bacteria": 1, "virus": 2}
        labels = frame["pathogen"].map(lookup).fillna(-1).to_numpy(np.int32)
    else:
        raise DataError(f"unknown --task {task} ({', '.join(TASKS)})")
    return np.where(unlabelled, -1, labels).astype(np.int32)


def decoded_dataset(paths: list[str], labels: np.ndarray, image_size: int) -> tf.data.Dataset:
    """(image uint8, label, row index) per readable file; undecodable files are dropped.

    The row index lets the caller report exactly which files tf could not decode.
    """
    ds = tf.data.Dataset.from_tensor_slices((paths, labels, np.arange(len(paths), dtype=np.int64)))
    ds = ds.map(
        lambda p, y, i: (decode_file(p, image_size), y, i),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    return ds.ignore_errors()


def counted(ds: tf.data.Dataset, bar: tqdm) -> tf.data.Dataset:
    """`ds` unchanged, advancing `bar` once per element as it is produced.

    Dataset.save has no progress hook; a py_function on the (cheap) index is the only way
    to see elements go by, so it is added only when a bar is shown.
    """

    def tick(index: tf.Tensor) -> tf.Tensor:
        bar.update(1)
        return index

    return ds.map(lambda x, y, i: (x, y, tf.ensure_shape(tf.py_function(tick, [i], tf.int64), [])))


def save_split(
    out_dir: Path,
    split: str,
    paths: list[str],
    labels: np.ndarray,
    image_size: int,
    progress: bool,
    what: str | None = None,
) -> list[str]:
    """Decodes `paths` into `out_dir/<split>/` (a tf.data snapshot); returns the paths that
    did not decode. None decoding is a DataError about `what` (default: the split)."""
    ds = decoded_dataset(paths, labels, image_size)
    bar = tqdm(
        total=len(paths),
        desc=f"decoding {split}",
        unit="image",
        leave=False,
        disable=not progress,
    )
    if progress:
        ds = counted(ds, bar)
    # Saved under a temporary name and renamed: a killed run never leaves a split
    # folder that looks complete but is not.
    target = out_dir / split
    partial = out_dir / f".{split}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    ds.save(os.fspath(partial))
    bar.close()
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    saved = tf.data.Dataset.load(os.fspath(target)).map(lambda x, y, i: i)
    kept = set(saved.as_numpy_iterator())
    lost = [paths[i] for i in range(len(paths)) if i not in kept]
    if not kept:
        what = what or f"the {split} split"
        raise DataError(
            f"no image of {what} could be decoded "
            f"(e.g. {lost[0]}: {decode_problem(lost[0], image_size)})"
            if lost
            else f"{what} is empty"
        )
    return lost


def folder_fingerprint(root: Path, files: list[Path]) -> str:
    """A short hash of the files' names (relative to `root`) and contents: the same images
    give the same fingerprint wherever the folder is."""
    return fingerprint([[str(path.relative_to(root)), file_sha256(path)] for path in files])


def adaptation_split(out_dir: Path, folder: str, image_size: int, progress: bool) -> dict[str, Any]:
    """The deployment site's unlabelled images (`--adapt_to`) saved as the split "adapt".

    Every image file at any depth below `folder` is read, and every one gets the label
    UNLABELLED: folder names are never read, so class folders, if the site has them, say
    nothing to training. Unusable files are skipped with the reason; adapt.csv lists the
    files in the order of the saved split's row indices.
    """
    root = Path(folder).resolve()
    candidates = image_files_below(root)
    problems = {path: check_image(path) for path in candidates}
    usable = [path for path in candidates if problems[path] is None]
    skipped = [{"path": str(path), "reason": reason} for path, reason in problems.items() if reason]
    if not usable:
        example = f" (e.g. {skipped[0]['path']}: {skipped[0]['reason']})" if skipped else ""
        raise DataError(f"--adapt_to {folder}: no usable image{example}")
    paths = [str(path) for path in usable]
    unlabelled = np.full(len(paths), UNLABELLED, dtype=np.int32)
    lost = save_split(
        out_dir, ADAPT_SPLIT, paths, unlabelled, image_size, progress, f"--adapt_to {folder}"
    )
    skipped += [{"path": path, "reason": decode_problem(path, image_size)} for path in lost]
    write_csv(out_dir / "adapt.csv", pd.DataFrame({"path": paths}))
    undecoded = set(lost)
    kept = [path for path in usable if str(path) not in undecoded]
    for item in skipped:
        logging.warning("transform: --adapt_to file %s skipped (%s)", item["path"], item["reason"])
    return {
        "folder": str(root),
        "images": len(kept),
        "fingerprint": folder_fingerprint(root, kept),
        "labels": "none read: unlabelled images (class folder names, if any, ignored)",
        "skipped": skipped,
    }


def run(
    out_dir: Path,
    *,
    examples: Path,
    image_size: int = 128,
    task: str = "binary",
    rotation: float = 0.03,
    zoom: float = 0.1,
    translation: float = 0.05,
    contrast: float = 0.1,
    horizontal_flip: bool = False,
    acquisition: float = DEFAULT_ACQUISITION,
    adapt_to: str | None = None,
    findings: tuple[str, ...] | None = None,
    progress: bool = False,
    tensorboard_dir: Path | None = None,
) -> dict[str, Any]:
    """The Transform component: saves each split decoded at `image_size` plus transform.json.

    `adapt_to`: a folder of the deployment site's unlabelled images, saved as the split
    "adapt" (the Trainer adapts to them; `adaptation_split`). `task` "multilabel": each
    label is a 0/1 vector over the findings seen in training (`findings_in_training`),
    or over `findings` when given (pipelines.evaluate: the model's own findings).
    """
    frame = pd.read_csv(examples / "examples.csv", keep_default_na=False)
    if task == "multilabel":
        class_names = list(findings) if findings else findings_in_training(frame)
        labels = multi_hot(frame["label"].tolist(), class_names)
    else:
        class_names = CLASS_NAMES.get(task, [])
        labels = class_index(frame, task)
    counts: dict[str, int] = {}
    undecodable: list[str] = []
    # Every split ExampleGen wrote: all three for training, only test for external
    # validation (pipelines.evaluate at a frozen threshold).
    for split in [s for s in SPLITS if (frame["split"] == s).any()]:
        rows = frame.index[frame["split"] == split]
        paths = frame.loc[rows, "path"].tolist()
        lost = save_split(out_dir, split, paths, labels[rows], image_size, progress)
        undecodable += lost
        counts[split] = len(paths) - len(lost)
    reasons = [{"path": path, "reason": decode_problem(path, image_size)} for path in undecodable]
    for item in reasons:
        logging.warning(
            "transform: TensorFlow could not decode %s (%s); skipped", item["path"], item["reason"]
        )
    train_labels = labels[(frame["split"] == "train").to_numpy()]
    spec = {
        "image_size": image_size,
        "channels": 1,
        "task": task,
        "class_names": class_names,
        "counts": counts,
        # Multi-label: the training images with each finding, and how many there are.
        "train_class_counts": (
            train_labels.sum(axis=0).tolist()
            if task == "multilabel"
            else np.bincount(train_labels, minlength=len(class_names)).tolist()
        ),
        "train_images": int(len(train_labels)),
        **(
            {"val_class_counts": labels[(frame["split"] == "val").to_numpy()].sum(axis=0).tolist()}
            if task == "multilabel" and (frame["split"] == "val").any()
            else {}
        ),
        "augmentation": {
            "rotation": rotation,
            "zoom": zoom,
            "translation": translation,
            "contrast": contrast,
            "horizontal_flip": horizontal_flip,
            "acquisition": acquisition,
        },
        "undecodable": undecodable,
        "undecodable_reasons": reasons,
    }
    if adapt_to is not None:
        spec["adaptation"] = adaptation_split(out_dir, adapt_to, image_size, progress)
        counts[ADAPT_SPLIT] = spec["adaptation"]["images"]
    write_json(out_dir / "transform.json", spec)
    if "train" in counts:
        preview = input_fn(out_dir, "train", batch_size=16, training=True, seed=0)
        images, _ = next(iter(preview))
        log_images(tensorboard_dir, "augmented_train_batch", images.numpy() / 255.0, max_outputs=16)
    adapted = {"adapt_images": counts[ADAPT_SPLIT]} if ADAPT_SPLIT in counts else {}
    return {"counts": counts, "undecodable": len(undecodable), **adapted}
