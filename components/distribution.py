"""This process's tf.distribute strategy and its place among the workers (TF_CONFIG).

The strategy is made once per process, at program start (`start`, called by the entry
point before ExampleGen or the Transform runs a TensorFlow op): MultiWorkerMirrored-
Strategy configures collective ops, which TensorFlow allows only before its runtime
starts ("Collective ops must be configured at program startup"). The Trainer asks for
it by name (`strategy`) and gets that same object.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from components.errors import DataError

STRATEGIES = ("default", "mirrored", "multi_worker")
_made: dict[str, tf.distribute.Strategy] = {}  # one per process: TensorFlow allows no more


def start(name: str, cpu_replicas: int = 1) -> tf.distribute.Strategy:
    """Makes the strategy `name` (default: one device; mirrored: every local GPU, or
    `cpu_replicas` logical CPU devices when there is no GPU; multi_worker: the workers
    in TF_CONFIG)."""
    if name in _made:
        return _made[name]
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r} ({', '.join(STRATEGIES)})")
    cluster_config()  # a malformed TF_CONFIG stops here, with one line, not inside TensorFlow
    if name == "default":
        made = tf.distribute.get_strategy()
    elif name == "mirrored":
        made = _mirrored(cpu_replicas)
    else:
        made = tf.distribute.MultiWorkerMirroredStrategy()
    _made[name] = made
    return made


def _mirrored(cpu_replicas: int) -> tf.distribute.Strategy:
    if tf.config.list_physical_devices("GPU") or cpu_replicas <= 1:
        return tf.distribute.MirroredStrategy()
    # No GPU: split the CPU into logical devices, one replica each (what the tests and
    # benchmarks/distributed.py run; the same cores, so no speed-up).
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas
    )
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    # NCCL, the default all-reduce, is GPU-only.
    return tf.distribute.MirroredStrategy(
        devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
    )


def strategy(name: str) -> tf.distribute.Strategy:
    """The strategy `start` made; default and mirrored ones can still be made late."""
    if name not in _made and name == "multi_worker":
        raise RuntimeError("the multi_worker strategy must be made by start() at program start")
    return start(name)


def cluster_config() -> dict:
    """TF_CONFIG, parsed and checked ({} when unset): a DataError names what is wrong
    with it, where TensorFlow would fail with a traceback or wait for absent workers.

    Expected: {"cluster": {"chief"|"worker"|...: ["host:port", ...]},
               "task": {"type": <a job in cluster>, "index": <its position there>}}
    """
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"TF_CONFIG is not valid JSON ({error})") from error
    if not isinstance(config, dict):
        raise DataError('TF_CONFIG must be a JSON object with "cluster" and "task"')
    problem = _cluster_problem(config.get("cluster", {})) or _task_problem(
        config.get("task", {}), config.get("cluster", {})
    )
    if problem:
        raise DataError(f"TF_CONFIG: {problem}")
    return config


def _cluster_problem(cluster: object) -> str | None:
    if not isinstance(cluster, dict):
        return '"cluster" must map job names to lists of "host:port" addresses'
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            return f'cluster job "{job}" must be a non-empty list of "host:port" addresses'
        for address in addresses:
            if not _is_host_port(address):
                return f'cluster job "{job}" has {address!r}, not a "host:port" address'
    return None


def _is_host_port(address: object) -> bool:
    if not isinstance(address, str):
        return False
    host, _, port = address.rpartition(":")
    return bool(host) and port.isdigit()


def _task_problem(entry: object, cluster: dict) -> str | None:
    if not isinstance(entry, dict):
        return '"task" must be {"type": ..., "index": ...}'
    if not entry and not cluster:
        return None  # neither: a single process
    kind, index = entry.get("type"), entry.get("index", 0)
    if kind not in cluster:
        return f"task type {kind!r} is not a job of the cluster ({', '.join(cluster) or 'none'})"
    if not isinstance(index, int) or isinstance(index, bool):
        return f"task index {index!r} is not an integer"
    if not 0 <= index < len(cluster[kind]):
        return f'task index {index} is outside job "{kind}" (0 to {len(cluster[kind]) - 1})'
    return None


def task() -> tuple[str, int]:
    """(task type, index) from TF_CONFIG; ("chief", 0) for a single process."""
    entry = cluster_config().get("task") or {}
    return str(entry.get("type", "chief")), int(entry.get("index", 0))


def is_chief() -> bool:
    """The chief writes the run's artifacts: task "chief", or worker 0 when the cluster
    names no chief (TensorFlow's own rule)."""
    config = cluster_config()
    kind, index = task()
    if kind == "chief":
        return True
    return kind == "worker" and index == 0 and "chief" not in config.get("cluster", {})


def barrier(made: tf.distribute.Strategy) -> None:
    """Returns on every worker only once all have reached it (a one-number all-reduce)."""
    if made.extended._in_multi_worker_mode():  # noqa: SLF001 (no public test for it)
        made.reduce(tf.distribute.ReduceOp.SUM, made.run(lambda: tf.constant(1.0)), axis=None)


def tuner_worker_id() -> str | None:
    """This process's KERASTUNER_TUNER_ID when it is a keras-tuner worker (not the chief,
    whose id contains "chief", keras-tuner's own rule)."""
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID")
    if "KERASTUNER_ORACLE_IP" not in os.environ or not tuner_id or "chief" in tuner_id:
        return None
    return tuner_id
