"""What TensorBoard shows of a finished run: the HParams session (flags against final
metrics) and the Projector's embedding of the test images, read as TensorBoard reads them."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from google.protobuf import text_format
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.projector import ProjectorConfig
from tensorboard.util import tensor_util


def hparams_session(log_dir):
    """(hparams, metric scalars) of the one HParams session in `log_dir`."""
    events = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    events.Reload()
    hparams, scalars = None, {}
    for tag in events.Tags()["tensors"]:
        content = events.SummaryMetadata(tag).plugin_data
        if content.plugin_name == hparams_metadata.PLUGIN_NAME:
            data = hparams_metadata.parse_session_start_info_plugin_data(content.content)
            hparams = {k: getattr(v, v.WhichOneof("kind")) for k, v in data.hparams.items()}
        else:
            (event,) = events.Tensors(tag)
            scalars[tag] = float(tensor_util.make_ndarray(event.tensor_proto))
    return hparams, scalars


def test_every_pneumonia_run_is_one_hparams_session(drawn_pneumonia_run):
    run_dir = drawn_pneumonia_run.run_dir
    hparams, scalars = hparams_session(run_dir / "tensorboard" / "hparams")
    flags = json.loads((run_dir / "pipeline.json").read_text())["flags"]
    assert hparams["epochs"] == 2 and hparams["seed"] == 5 and hparams["explain"] == "gradcam"
    assert set(hparams) == set(flags)
    metrics = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    for split in ("val", "test"):
        for key in ("auc", "accuracy", "sensitivity", "specificity", "ece"):
            assert math.isclose(scalars[f"{split}/{key}"], metrics[split][key], rel_tol=1e-6)
    assert math.isclose(scalars["threshold"], metrics["threshold"], rel_tol=1e-6)


def test_every_heart_run_is_one_hparams_session(heart_run):
    hparams, scalars = hparams_session(heart_run.run_dir / "tensorboard" / "hparams")
    assert hparams["models"] == "lasso,mlp,nam" and hparams["cv"] == 2
    metrics = json.loads((heart_run.run_dir / "evaluator" / "metrics.json").read_text())
    for model in ("lasso", "mlp", "nam"):
        assert math.isclose(
            scalars[f"{model}/test/auc"], metrics[model]["test"]["auc"], rel_tol=1e-6
        )


def test_projector_holds_every_test_image_with_its_thumbnail_and_metadata(drawn_pneumonia_run):
    run_dir = drawn_pneumonia_run.run_dir
    folder = run_dir / "tensorboard" / "evaluator"
    config = text_format.Parse((folder / "projector_config.pbtxt").read_text(), ProjectorConfig())
    (embedding,) = config.embeddings
    n = json.loads((run_dir / "evaluator" / "metrics.json").read_text())["test"]["n"]
    features = np.loadtxt(folder / embedding.tensor_path, delimiter="\t", ndmin=2)
    assert list(embedding.tensor_shape) == list(features.shape)
    assert features.shape[0] == n and features.shape[1] > 1
    metadata = pd.read_csv(folder / embedding.metadata_path, sep="\t")
    assert len(metadata) == n
    columns = ["label", "score", "predicted", "correct", "pathogen", "batch"]
    assert columns == list(metadata.columns[: len(columns)])
    predictions = pd.read_csv(run_dir / "evaluator" / "predictions.csv")
    test = predictions[predictions["split"] == "test"].reset_index(drop=True)
    assert np.allclose(metadata["score"], test["score"], atol=1e-4)  # same images, same order
    # Labels, calls and "correct" as the Evaluator scored them: its scores at its threshold.
    metrics = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    called = np.where(test["score"] >= metrics["threshold"], "PNEUMONIA", "NORMAL")
    assert metadata["label"].tolist() == test["label"].tolist()
    assert metadata["predicted"].tolist() == called.tolist()
    assert metadata["correct"].tolist() == (test["label"] == called).tolist()
    assert metadata["correct"].mean() == pytest.approx(metrics["test"]["accuracy"])
    side, dim = math.ceil(math.sqrt(n)), list(embedding.sprite.single_image_dim)
    with Image.open(folder / embedding.sprite.image_path) as sprite:
        assert sprite.size == (side * dim[0], side * dim[1])
