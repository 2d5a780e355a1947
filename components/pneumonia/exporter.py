"""Exporter: `<run>/export/serving/`, a SavedModel that a serving system uses as it is.

Its signature `serve` takes a batch of encoded image files (tf.string: JPEG or PNG, any
size, 8 or 16 bit, gray or colour) and returns `score` (the pneumonia probability; the
class probabilities for three classes) and `label` (the class name at the run's
validation threshold, or a site's recalibrated one in the copy `pipelines.evaluate
--calibration_dir` writes; argmax for three classes). A multi-label run's `score` and
`label` have one column per finding (the finding's probability; "present" or "absent" at
its own validation threshold), and `findings` names the present ones ("Effusion|Mass", or
"No Finding"). Decoding, grayscale, resizing and the
threshold are in the graph (components/images.decode_image_bytes, the Transform's own
decoder), and the model normalizes its own input, so TensorFlow Serving, or any
TensorFlow runtime, serves it without this repository: `tf.saved_model.load(path)
.signatures["serving_default"](images=...)`.

Keras' ExportArchive (what `model.export` is built on) writes it: `model.export` alone
would take float pixels, leaving decoding and the threshold to every client.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from components.artifacts import read_json, write_json
from components.images import decode_image_bytes
from components.saved_splits import load_spec
from components.trained_model import load_trained_model
from datasets.nih_chestxray14.findings import NO_FINDING


def serving_archive(
    model: keras.Model,
    image_size: int,
    class_names: list[str],
    threshold: float | None,
    finding_thresholds: list[float] | None = None,
) -> keras.export.ExportArchive:
    """The `serve` endpoint: encoded images in; scores and labels out (`finding_thresholds`:
    a multi-label model's per-finding thresholds, in `class_names`' order)."""
    names = tf.constant(class_names)
    pixels = tf.TensorSpec((image_size, image_size, 1), tf.uint8)

    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        decoded = tf.map_fn(
            lambda raw: decode_image_bytes(raw, image_size), images, fn_output_signature=pixels
        )
        probabilities = tf.cast(model(tf.cast(decoded, tf.float32), training=False), tf.float32)
        if finding_thresholds is not None:
            present = probabilities >= tf.constant(finding_thresholds, tf.float32)
            joined = tf.strings.reduce_join(tf.where(present, names, ""), axis=1, separator="|")
            # reduce_join keeps the empty strings' separators: drop them, then name "none".
            joined = tf.strings.regex_replace(joined, r"\|+", "|")
            joined = tf.strings.regex_replace(joined, r"^\||\|$", "")
            return {
                "score": probabilities,
                "label": tf.where(present, "present", "absent"),
                "findings": tf.where(joined == "", NO_FINDING, joined),
            }
        if threshold is None:
            return {"score": probabilities, "label": tf.gather(names, tf.argmax(probabilities, 1))}
        score = probabilities[:, 0]
        flagged = tf.cast(score >= threshold, tf.int32)
        return {"score": score, "label": tf.gather(names, flagged)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serve",
        fn=serve,
        input_signature=[tf.TensorSpec((None,), tf.string, name="images")],
    )
    return archive


def output_description(threshold: float | None, multilabel: bool) -> dict[str, str]:
    """serving.json's words for the endpoint's outputs."""
    if multilabel:
        return {
            "score": "float32 (batch, findings) probability of each finding (class_names)",
            "label": 'string (batch, findings) "present" or "absent" at the finding\'s threshold',
            "findings": 'string (batch,) the present findings, "|"-separated, or "No Finding"',
        }
    return {
        "score": "float32 (batch,) pneumonia probability"
        if threshold is not None
        else "float32 (batch, classes) class probabilities",
        "label": "string (batch,) class name",
    }


def run(
    out_dir: Path,
    *,
    transform: Path,
    trainer: Path,
    evaluator: Path,
) -> dict[str, Any]:
    """Writes out_dir/serving/ (SavedModel) and out_dir/serving.json (what it expects)."""
    spec = load_spec(transform)
    metrics = read_json(evaluator / "metrics.json")
    threshold = metrics["threshold"]
    findings = metrics.get("thresholds")  # a multi-label run: one per finding
    finding_thresholds = [findings[n] for n in spec["class_names"]] if findings else None
    model = load_trained_model(trainer)
    archive = serving_archive(
        model, spec["image_size"], spec["class_names"], threshold, finding_thresholds
    )
    # Written beside and renamed, so a killed export never leaves a half SavedModel.
    partial, target = out_dir / ".serving.partial", out_dir / "serving"
    shutil.rmtree(partial, ignore_errors=True)
    archive.write_out(os.fspath(partial), verbose=False)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    description = {
        "signature": "serving_default (also 'serve')",
        "input": "images: tf.string (batch,), encoded JPEG or PNG files",
        "outputs": output_description(threshold, finding_thresholds is not None),
        "image_size": spec["image_size"],
        "class_names": spec["class_names"],
        "threshold": threshold,
        **({"thresholds": findings} if findings else {}),
        # "site_calibrated" in pipelines.evaluate --calibration_dir's copy for one site.
        "threshold_rule": metrics.get("threshold_rule"),
        **({"site": metrics["site"]} if metrics.get("site") else {}),
    }
    write_json(out_dir / "serving.json", description)
    return {"serving": "serving", "threshold": threshold}
