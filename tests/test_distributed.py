"""--strategy multi_worker (two worker processes on 127.0.0.1), --strategy mirrored (two
logical CPU devices) and the training loop both share (models/distributed_fit.py).

Every process runs with a hard timeout and is killed when its test ends
(benchmarks/local_workers.py); the ports are free ones on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.local_workers import free_ports, run_workers, started, wait_all
from benchmarks.small_folders import make_drawn_folder
from tests.conftest import REPO_ROOT

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
TIMEOUT_S = 420
PER_REPLICA_BATCH = 8


def write_audit(folder: Path, record: Path) -> dict[str, str]:
    """The environment under which a Python process records into `record` what it writes
    below `folder` (tests/support/write_audit/sitecustomize.py)."""
    paths = [str(REPO_ROOT / "tests" / "support" / "write_audit"), os.environ.get("PYTHONPATH")]
    return {
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "WRITE_AUDIT_DIR": str(folder),
        "WRITE_AUDIT_LOG": str(record),
    }


def command(data: Path, run_dir: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipelines.pneumonia",
        "--data_dir",
        str(data),
        "--run_dir",
        str(run_dir),
        "--image_size",
        "32",
        "--epochs",
        "2",
        "--batch_size",
        str(PER_REPLICA_BATCH),
        "--bootstrap",
        "20",
        "--explain",
        "gradcam",
        "--quiet",
        *args,
    ]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_drawn_folder(tmp_path_factory.mktemp("distributed") / "data", 12, 2)


@pytest.fixture(scope="module")
def mirrored_run(data, tmp_path_factory) -> Path:
    """One process, two replicas on two logical CPU devices: the global batch of the
    two-worker run below."""
    run_dir = tmp_path_factory.mktemp("mirrored") / "run"
    logs = run_dir.parent / "logs"
    one = command(data, run_dir, "--strategy", "mirrored", "--cpu_replicas", "2")
    one.remove("--quiet")  # run.log then records the trainer's line on the global batch
    with started(
        [one], [{k: v for k, v in ENV.items() if k != "TF_CONFIG"}], REPO_ROOT, logs
    ) as ps:
        (finished,) = wait_all(ps, logs, TIMEOUT_S)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return run_dir


def trainer_outputs(run_dir: Path) -> dict:
    return json.loads((run_dir / "trainer" / "metadata.json").read_text())["outputs"]


def test_mirrored_trains_on_two_logical_cpu_devices_with_a_per_replica_batch(mirrored_run):
    outputs = trainer_outputs(mirrored_run)
    assert outputs["strategy"] == "mirrored" and outputs["replicas"] == 2
    assert outputs["batch_size_per_replica"] == PER_REPLICA_BATCH
    assert outputs["global_batch_size"] == 2 * PER_REPLICA_BATCH
    assert "global batch 16 (8 per replica)" in (mirrored_run / "run.log").read_text()
    history = pd.read_csv(mirrored_run / "trainer" / "history.csv")
    assert history["epoch"].tolist() == [0, 1]
    assert (mirrored_run / "trainer" / "model.keras").is_file()
    assert json.loads((mirrored_run / "pipeline.json").read_text())["status"] == "completed"


def test_two_workers_train_as_one_process_and_only_the_chief_writes(data, mirrored_run, tmp_path):
    run_dir = tmp_path / "run"
    scratch = {i: tmp_path / f"tmp{i}" for i in range(2)}
    for folder in scratch.values():
        folder.mkdir()
    audits = {i: tmp_path / f"writes{i}.json" for i in range(2)}
    finished = run_workers(
        command(data, run_dir, "--strategy", "multi_worker"),
        2,
        REPO_ROOT,
        tmp_path / "logs",
        TIMEOUT_S,
        env=ENV,
        worker_env={
            i: {"TMPDIR": str(scratch[i]), **write_audit(run_dir, audits[i])} for i in range(2)
        },
    )
    for i, result in enumerate(finished):
        assert result.returncode == 0, f"worker {i}: {result.stderr[-3000:]}"
    chief = trainer_outputs(run_dir)
    assert chief["strategy"] == "multi_worker" and chief["replicas"] == 2
    assert chief["global_batch_size"] == 2 * PER_REPLICA_BATCH
    # Worker 1 trained with the chief and ended with the very same weights...
    line = re.search(
        r"final weights sha256 (\w+); wrote only to (\S+), now deleted", finished[1].stdout
    )
    assert line, finished[1].stdout[-2000:]
    assert line.group(1) == chief["weights_sha256"]
    # ...writing only to its own temporary folder, deleted at the end; the run folder's
    # artifacts are the chief's (its pipeline.json records one pipeline, completed).
    assert Path(line.group(2)).parent == scratch[1] and not any(scratch[1].iterdir())
    # Nothing in the run folder is worker 1's: Python saw it open nothing there for
    # writing, rename, remove or make nothing (the same record of the chief is full of
    # them), and no TensorBoard event file there carries its process id (TensorFlow's
    # C++ writers name their files ...<host>.<pid>.<n>.v2).
    chief_record, worker_record = (json.loads(audits[i].read_text()) for i in range(2))
    assert any("trainer/model.keras" in w for w in chief_record["writes"])
    assert worker_record["writes"] == []
    event_pids = {
        int(re.search(r"\.(\d+)\.\d+\.v2$", event.name).group(1))
        for event in run_dir.rglob("events.out.tfevents.*")
    }
    assert event_pids and worker_record["pid"] not in event_pids
    assert (run_dir / "trainer" / "model.keras").is_file()
    assert json.loads((run_dir / "pipeline.json").read_text())["status"] == "completed"
    assert "Run folder:" in finished[0].stdout and "Run folder:" not in finished[1].stdout
    # Same global batch, same per-replica computation (synchronized batch norm, the same
    # images in each replica's half of the batch) as the one-process mirrored run: only
    # the order in which the all-reduce adds the two replicas' gradients may differ,
    # and for two terms float addition is commutative, so the curves agree to float32
    # rounding of the AUC's own sums.
    two_workers = pd.read_csv(run_dir / "trainer" / "history.csv")
    one_process = pd.read_csv(mirrored_run / "trainer" / "history.csv")
    assert two_workers["epoch"].tolist() == one_process["epoch"].tolist()
    assert two_workers["val_auc"].to_numpy() == pytest.approx(
        one_process["val_auc"].to_numpy(), abs=1e-6
    )
    assert two_workers["loss"].to_numpy() == pytest.approx(one_process["loss"].to_numpy(), rel=1e-5)


def test_the_loop_trains_exactly_as_keras_fit():
    """Default strategy: models/distributed_fit.fit == model.fit, metric for metric and
    weight for weight (same batches, class weights, early stopping)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from models import distributed_fit
    from models.cnn import build_cnn
    from models.training import compile_for_training

    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (40, 32, 32, 1)).astype("float32")
    y = (rng.uniform(size=40) > 0.4).astype("float32")
    x[y == 1, 8:16, 8:16] += 60

    def batches() -> tf.data.Dataset:  # one per run: a reshuffled dataset carries its epoch
        return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(40, seed=3).batch(8)

    val = tf.data.Dataset.from_tensor_slices((x[:16], y[:16])).batch(8)
    results = []
    for loop in (False, True):
        keras.utils.set_random_seed(1)
        net = compile_for_training(build_cnn(32, 1, 2, filters=(8, 16)), 2, 1e-3, "cross_entropy")
        stop = keras.callbacks.EarlyStopping(
            monitor="val_auc", mode="max", patience=1, restore_best_weights=True
        )
        kwargs = dict(epochs=3, class_weight={0: 1.3, 1: 0.8}, verbose=0, callbacks=[stop])
        if loop:
            history = distributed_fit.fit(
                net, batches(), val, strategy=tf.distribute.get_strategy(), **kwargs
            )
        else:
            history = net.fit(batches(), validation_data=val, shuffle=False, **kwargs)
        results.append((history.history, distributed_fit.weights_digest(net)))
    (fit_history, fit_weights), (loop_history, loop_weights) = results
    assert loop_history == fit_history
    assert loop_weights == fit_weights


def test_keras_tuner_chief_and_two_workers_share_one_search(data, tmp_path):
    """keras-tuner's own distributed mode on 127.0.0.1: the chief serves the oracle, the
    workers run the trials; trials.csv lists both workers' trials and the best
    hyperparameters feed the one final training, on the chief."""
    run_dir = tmp_path / "run"
    (port,) = free_ports(1)
    oracle = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    ids = ("chief", "tuner0", "tuner1")
    scratch = {tuner_id: tmp_path / tuner_id for tuner_id in ids}
    for folder in scratch.values():
        folder.mkdir()
    envs = [
        {
            **{k: v for k, v in ENV.items() if k != "TF_CONFIG"},
            **oracle,
            "KERASTUNER_TUNER_ID": tuner_id,
            "TMPDIR": str(scratch[tuner_id]),
        }
        for tuner_id in ids
    ]
    one = command(data, run_dir, "--tune", "--max_trials", "3", "--epochs", "1")
    logs = tmp_path / "logs"
    with started([one] * 3, envs, REPO_ROOT, logs) as processes:
        finished = wait_all(processes, logs, TIMEOUT_S)
    for tuner_id, result in zip(ids, finished):
        assert result.returncode == 0, f"{tuner_id}: {result.stderr[-3000:]}"
    for tuner_id, result in zip(ids[1:], finished[1:]):
        assert f"{tuner_id}: ran the trials" in result.stdout
        assert not any(scratch[tuner_id].iterdir()), "a worker left its temporary folder"
    trials = pd.read_csv(run_dir / "tuner" / "trials.csv")
    assert len(trials) == 3 and set(trials["status"]) == {"COMPLETED"}
    assert set(trials["worker"]) == {0, 1}, "both workers ran trials (the chief none)"
    best = json.loads((run_dir / "tuner" / "best_hyperparameters.json").read_text())
    top = trials.sort_values("val_auc", ascending=False).iloc[0]
    assert best["base_filters"] == top["base_filters"] and best["depth"] == top["depth"]
    trainer = json.loads((run_dir / "trainer" / "metadata.json").read_text())
    assert trainer["status"] == "completed" and trainer["inputs"]["tuner"]["component"] == "tuner"
    assert trainer["outputs"]["parameters"] > 0


@pytest.mark.parametrize(
    "config, expected",
    [
        ('{"cluster": {"worker": ["localhost:1"]', "TF_CONFIG is not valid JSON"),
        ("[1, 2]", 'TF_CONFIG must be a JSON object with "cluster" and "task"'),
        ('{"cluster": ["localhost:1"]}', '"cluster" must map job names'),
        ('{"cluster": {"worker": "localhost:1"}}', 'job "worker" must be a non-empty list'),
        ('{"cluster": {"worker": ["localhost"]}}', "'localhost', not a \"host:port\" address"),
        ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "chief"}}', "task type 'chief' is"),
        ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": "0"}}', "index '0'"),
        ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 1}}', "0 to 0"),
    ],
)
def test_a_malformed_tf_config_is_bad_input_naming_what_is_wrong(config, expected, monkeypatch):
    """Checked as the strategy is made, before any step (tests/test_bad_inputs.py runs the
    command line on one); TensorFlow would raise a traceback, or wait for absent workers."""
    from components import distribution
    from components.errors import DataError

    monkeypatch.setenv("TF_CONFIG", config)
    with pytest.raises(DataError, match=re.escape(expected)):
        distribution.cluster_config()
    monkeypatch.setenv(
        "TF_CONFIG",
        '{"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 1}}',
    )
    assert distribution.task() == ("worker", 1) and not distribution.is_chief()
    monkeypatch.delenv("TF_CONFIG")
    assert distribution.task() == ("chief", 0) and distribution.is_chief()
