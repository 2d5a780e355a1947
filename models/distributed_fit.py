"""`fit`: Keras' own train_step, test_step and callbacks under any tf.distribute strategy.

Why a loop is written here at all: Keras 3.15's `model.fit` fails under
MultiWorkerMirroredStrategy (keras-team/keras#20585: "Attempt to convert a value
(PerReplica:{...}) ... to a Tensor", raised in its per-step log reduction). This loop is
what `fit` does, minus that reduction: callbacks through `keras.callbacks.CallbackList`,
`strategy.run(model.train_step)` on `strategy.experimental_distribute_dataset`, and the
epoch's metrics read from the model's own (synchronized) metric variables. The loss,
class weights (as per-image sample weights, as `fit` turns `class_weight` into them) and
metrics are Keras' train_step's own: its loss is the replica's mean over its batch
divided by the number of replicas, which with equal replica batches is
tf.nn.compute_average_loss over the global batch. One path for every strategy, so the
default single-device run trains exactly as the multi-worker one.

`ResumableState` keeps what Keras' BackupAndRestore does not: the state of
EarlyStopping, ReduceLROnPlateau and ModelCheckpoint (best value, waits, best weights)
and the model's random-seed states (dropout), so a run killed and resumed picks the same
best epoch as one never interrupted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf


def with_class_weights(ds: tf.data.Dataset, class_weight: dict[int, float] | None):
    """(x, y) -> (x, y, per-image weight of its class): what `fit(class_weight=)` feeds."""
    if not class_weight:
        return ds
    table = tf.constant([class_weight.get(c, 1.0) for c in range(max(class_weight) + 1)])

    def weigh(x: tf.Tensor, y: tf.Tensor):
        one_hot = y.shape.rank > 1 and y.shape[-1] != 1
        label = tf.argmax(y, axis=-1) if one_hot else tf.reshape(tf.round(y), [-1])
        return x, y, tf.gather(table, tf.cast(label, tf.int32))

    return ds.map(weigh, num_parallel_calls=tf.data.AUTOTUNE)


def synchronize_batch_norm(model: keras.Model) -> int:
    """Batch statistics over the global batch, for every BatchNormalization (backbones
    included); returns how many. Unsynchronized, each replica normalizes by its own part
    of the batch and keeps its own moving statistics, so the workers' models end up
    different and the saved one holds the chief's share only. Set before the first step
    traces the layers; only for several replicas (one replica needs no all-reduce)."""
    layers = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    for layer in layers:
        layer.synchronized = True
    return len(layers)


def sharded_by_data(ds: tf.data.Dataset) -> tf.data.Dataset:
    """Each worker takes its part of every global batch (not whole files: there is one)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def _batches_per_epoch(ds: tf.data.Dataset) -> int | None:
    """For the progress bar, as fit's epoch iterator gives it (None: unknown)."""
    count = int(ds.cardinality())
    return count if count >= 0 else None


def _open_next_epoch(batches, steps: int | None) -> None:
    """What fit's epoch iterator does after a full epoch of a dataset of known length: it
    opens the next epoch's iterator at once (and opens another when that epoch begins).
    Opening one draws the next reshuffle seed, so doing the same keeps the order of
    batches, epoch by epoch, what `fit` gave (tests/test_distributed.py)."""
    if steps is not None:
        iter(batches)


def _python_logs(logs: dict) -> dict[str, float]:
    return {name: float(np.asarray(value)) for name, value in logs.items()}


def fit(
    model: keras.Model,
    train: tf.data.Dataset,
    val: tf.data.Dataset,
    *,
    epochs: int,
    initial_epoch: int = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    strategy: tf.distribute.Strategy,
    class_weight: dict[int, float] | None = None,
    verbose: int = 2,
) -> keras.callbacks.History:
    """Trains epochs `initial_epoch`..`epochs - 1` on `train`'s global batches (one pass
    an epoch, as `fit` iterates it). Returns the History, as `fit` does."""
    steps = _batches_per_epoch(train)
    callback_list = keras.callbacks.CallbackList(
        list(callbacks),
        add_history=True,
        add_progbar=verbose != 0,
        verbose=verbose,
        epochs=epochs,
        steps=steps,
        model=model,
    )
    with strategy.scope():
        # What fit's _symbolic_build does: build compile metrics, loss and optimizer
        # variables here, under the scope, not inside strategy.run.
        model._symbolic_build(data_batch=next(iter(val.take(1))))

    @tf.function(reduce_retracing=True)
    def train_step(batch):
        strategy.run(model.train_step, args=(batch,))

    @tf.function(reduce_retracing=True)
    def test_step(batch):
        strategy.run(model.test_step, args=(batch,))

    distributed_train = strategy.experimental_distribute_dataset(
        sharded_by_data(with_class_weights(train, class_weight))
    )
    distributed_val = strategy.experimental_distribute_dataset(sharded_by_data(val))
    model.stop_training = False
    callback_list.on_train_begin()
    # BackupAndRestore.on_train_begin sets _initial_epoch, which fit reads the same way.
    restored = getattr(model, "_initial_epoch", None)
    # A resumed run first replays the input of the epochs the backup holds (input only:
    # seconds an epoch). tf.data's seeded reshuffle and the augmentation's seed states
    # advance only by being iterated, so this is what makes the resumed epochs see the
    # images, order and augmentation an uninterrupted run sees.
    for _ in range((restored or initial_epoch) - initial_epoch):
        for _ in distributed_train:
            pass
        _open_next_epoch(distributed_train, steps)
    initial_epoch = restored or initial_epoch
    logs: dict[str, float] = {}
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        for step, batch in enumerate(distributed_train):
            callback_list.on_train_batch_begin(step)
            train_step(batch)
            callback_list.on_train_batch_end(step)
            if model.stop_training:
                break
        else:
            _open_next_epoch(distributed_train, steps)
        logs = _python_logs(model.get_metrics_result())
        model.reset_metrics()
        callback_list.on_test_begin()
        for step, batch in enumerate(distributed_val):
            test_step(batch)
        val_logs = _python_logs(model.get_metrics_result())
        callback_list.on_test_end(val_logs)
        logs.update({f"val_{name}": value for name, value in val_logs.items()})
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs)
    model._initial_epoch = None
    return model.history


# Keras callbacks' own attributes that make up their state between epochs.
CALLBACK_STATE = {
    keras.callbacks.EarlyStopping: ("wait", "stopped_epoch", "best", "best_epoch"),
    keras.callbacks.ReduceLROnPlateau: ("wait", "best", "cooldown_counter"),
    keras.callbacks.ModelCheckpoint: ("best",),
}


def _state_names(callback: keras.callbacks.Callback) -> tuple[str, ...]:
    """The attributes of `callback` ResumableState keeps: its class's or its nearest
    base class's in CALLBACK_STATE (a subclass such as an atomic checkpoint keeps its
    base's state); () for any other callback."""
    kept = (CALLBACK_STATE.get(cls) for cls in type(callback).__mro__)
    return next((names for names in kept if names), ())


def _plain(value):
    """A callback attribute as JSON: None and ints as they are, numbers as floats."""
    return value if value is None or isinstance(value, int) else float(value)


class ResumableState(keras.callbacks.Callback):
    """Saves, after every epoch, the state BackupAndRestore leaves out; restores it at the
    start of a resumed run.

    Place it after the callbacks it saves (their on_train_begin resets them, then this
    one restores them) and before BackupAndRestore: epoch e's state is on disk before
    epoch e's weights, so whichever epoch BackupAndRestore resumes from has its state.
    States of the last two epochs are kept (BackupAndRestore's double_checkpoint may fall
    back one epoch).
    """

    def __init__(self, backup_dir: Path, callbacks: Sequence[keras.callbacks.Callback]):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.saved = [c for c in callbacks if _state_names(c)]

    def _state_path(self, epoch: int) -> Path:
        return self.backup_dir / f"callbacks-{epoch}.json"

    def _seed_states(self) -> list[keras.Variable]:
        return [v for v in self.model.variables if "seed_generator_state" in v.path]

    def on_train_begin(self, logs=None):
        """On a resumed run, sets the saved callbacks' state, EarlyStopping's best weights and the
        seed generators back to where the backup's epoch left them; nothing on a fresh run."""
        metadata = self.backup_dir / "training_metadata.json"
        if not metadata.is_file():
            return
        epoch = int(json.loads(metadata.read_text())["epoch"])  # next epoch to run
        path = self._state_path(epoch)
        if not path.is_file():
            return
        state = json.loads(path.read_text())
        for callback, values in zip(self.saved, state["callbacks"]):
            for name, value in values.items():
                setattr(callback, name, value)
            if isinstance(callback, keras.callbacks.EarlyStopping) and state["best_weights"]:
                with np.load(self.backup_dir / state["best_weights"]) as best:
                    callback.best_weights = [best[f"w{i}"] for i in range(len(best.files))]
        for variable, value in zip(self._seed_states(), state["seed_states"]):
            variable.assign(np.asarray(value, dtype=variable.dtype))

    def on_epoch_end(self, epoch, logs=None):
        """Writes the saved callbacks' state, EarlyStopping's best weights and the seed generators'
        state for the next epoch into the backup folder."""
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        best_weights = None
        for callback in self.saved:
            if isinstance(callback, keras.callbacks.EarlyStopping) and callback.best_weights:
                best_weights = f"best-weights-{callback.best_epoch}.npz"
                if not (self.backup_dir / best_weights).is_file():
                    _save_atomically(
                        self.backup_dir / best_weights,
                        lambda f, w=callback.best_weights: np.savez(
                            f, **{f"w{i}": a for i, a in enumerate(w)}
                        ),
                    )
        state = {
            "epoch": epoch + 1,
            "callbacks": [
                {name: _plain(getattr(c, name, None)) for name in _state_names(c)}
                for c in self.saved
            ],
            "best_weights": best_weights,
            "seed_states": [np.asarray(v).tolist() for v in self._seed_states()],
        }
        _save_atomically(self._state_path(epoch + 1), lambda f: f.write(json.dumps(state).encode()))
        self._forget_older_than(epoch)

    def _forget_older_than(self, epoch: int) -> None:
        keep_states = {self._state_path(epoch + 1).name, self._state_path(epoch).name}
        referenced = set()
        for path in self.backup_dir.glob("callbacks-*.json"):
            if path.name not in keep_states:
                path.unlink()
            else:
                referenced.add(json.loads(path.read_text()).get("best_weights"))
        for path in self.backup_dir.glob("best-weights-*.npz"):
            if path.name not in referenced:
                path.unlink()


def _save_atomically(path: Path, write: Callable) -> None:
    """Write under a temporary name, then rename: a kill leaves the old file or the new."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


def weights_digest(model: keras.Model) -> str:
    """sha256 of every weight's bytes in order: equal on workers that trained alike."""
    import hashlib

    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return digest.hexdigest()
