"""SIGKILL a pipeline run during ExampleGen, mid-epoch and during the Explainer; the same
command run again completes with valid artifacts and does not redo finished components.

The kills are real SIGKILLs from this process. To land them at known points, the run
is started through `python -m benchmarks.bad_inputs pause POINT ...`, which stops the
pipeline there (an artifact under its temporary name, or mid-epoch) until it is killed.
"""

from __future__ import annotations

import pytest

from benchmarks.bad_inputs import interruption_trials
from components.artifacts import write_json


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    return {
        v.case: v
        for v in interruption_trials(tmp_path_factory.mktemp("interrupted"), log=lambda line: None)
    }


@pytest.mark.parametrize("point", ["during_example_gen", "mid_epoch", "during_explainer"])
def test_killed_run_resumes_with_valid_artifacts(trials, point):
    assert trials[point].ok, trials[point].detail


def test_a_failed_write_keeps_the_old_artifact(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_json(path, {"auc": 0.9})

    def killed(*args, **kwargs):  # the process dies between writing and renaming
        raise KeyboardInterrupt

    monkeypatch.setattr("components.artifacts.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_json(path, {"auc": 0.1})
    assert path.read_text() == '{\n  "auc": 0.9\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # the temporary is gone


def small_model():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy")
    return model


def save_killed_midway(monkeypatch, model):
    """model.save writes half a file at the path it is given, then the process "dies"."""

    def killed(path, *args, **kwargs):
        with open(path, "wb") as half:
            half.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(model, "save", killed)


def test_a_checkpoint_killed_mid_save_keeps_the_previous_model(tmp_path, monkeypatch):
    import keras

    from components.atomic_callbacks import AtomicModelCheckpoint

    path = tmp_path / "model.keras"
    checkpoint = AtomicModelCheckpoint(path, monitor="val_auc", mode="max", save_best_only=True)
    model = small_model()
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"val_auc": 0.6})
    saved = path.read_bytes()
    checkpoint.on_epoch_end(1, {"val_auc": 0.5})  # not better: not saved
    assert path.read_bytes() == saved
    save_killed_midway(monkeypatch, model)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.on_epoch_end(2, {"val_auc": 0.7})
    assert path.read_bytes() == saved and [p.name for p in tmp_path.iterdir()] == [path.name]
    assert keras.models.load_model(path, compile=False).count_params() == model.count_params()
    # Keras' own checkpoint, killed alike, leaves the half file in place of the model.
    plain = keras.callbacks.ModelCheckpoint(path, monitor="val_auc", mode="max")
    plain.set_model(model)
    with pytest.raises(KeyboardInterrupt):
        plain.on_epoch_end(3, {"val_auc": 0.8})
    assert path.read_bytes() != saved


def test_the_epoch_log_is_rewritten_whole_and_a_killed_write_keeps_the_old(tmp_path, monkeypatch):
    import pandas as pd

    from components.atomic_callbacks import AtomicCSVLogger

    path = tmp_path / "history.csv"
    log = AtomicCSVLogger(path, append=True)
    log.on_train_begin()
    log.on_epoch_end(0, {"val_auc": 0.5, "loss": 0.7})
    log.on_epoch_end(1, {"val_auc": 0.6, "loss": 0.6})
    resumed = AtomicCSVLogger(path, append=True)  # a resumed run, or a second phase
    resumed.on_train_begin()
    resumed.on_epoch_end(2, {"val_auc": 0.7, "loss": 0.5})
    before = path.read_text()
    assert before.splitlines() == [
        "epoch,loss,val_auc",
        "0,0.7,0.5",
        "1,0.6,0.6",
        "2,0.5,0.7",
    ]

    def killed(frame, target, *args, **kwargs):
        with open(target, "w") as half:
            half.write("epoch,loss,val")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", killed)
    with pytest.raises(KeyboardInterrupt):
        resumed.on_epoch_end(3, {"val_auc": 0.8, "loss": 0.4})
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == [path.name]
    monkeypatch.undo()
    fresh = AtomicCSVLogger(path)  # append=False: a new training starts a new log
    fresh.on_train_begin()
    fresh.on_epoch_end(0, {"loss": 0.9})
    assert path.read_text().splitlines() == ["epoch,loss", "0,0.9"]


def test_the_trainers_write_their_epoch_files_through_the_atomic_callbacks(tmp_path):
    import keras

    from components.atomic_callbacks import AtomicCSVLogger, AtomicModelCheckpoint
    from components.heart import trainer as heart_trainer
    from components.pneumonia import trainer
    from models.distributed_fit import ResumableState

    callbacks = trainer.training_callbacks(tmp_path, None, patience=3)
    kinds = [type(c) for c in callbacks]
    assert AtomicModelCheckpoint in kinds and AtomicCSVLogger in kinds
    assert keras.callbacks.CSVLogger not in kinds + [
        type(c) for c in heart_trainer.callbacks(tmp_path, None, 3)
    ]
    assert keras.callbacks.ModelCheckpoint not in kinds
    # A resumed run restores the checkpoint's best value, as it did Keras' own.
    (state,) = [c for c in callbacks if isinstance(c, ResumableState)]
    assert any(isinstance(c, AtomicModelCheckpoint) for c in state.saved)
