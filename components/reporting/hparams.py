"""A run's flags and final metrics as one TensorBoard HParams session.

Each run folder gets `tensorboard/hparams/`, so `tensorboard --logdir runs` lists every
run in the HParams tab, flags against metrics, beside the tuner's trials.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Mapping

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp


def hparam_value(value: Any) -> bool | int | float | str:
    """What the HParams plugin stores: bools, numbers and strings (a list as a,b,c)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def numeric_leaves(metrics: Mapping[str, Any], groups: Iterable[tuple[str, ...]]) -> dict:
    """The finite numbers directly inside each group of a metrics.json, named
    `group/.../key` (intervals, matrices and nested reports are left out)."""
    found: dict[str, float] = {}
    for group in groups:
        node: Any = metrics
        for key in group:
            node = node.get(key, {}) if isinstance(node, Mapping) else {}
        for key, value in node.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if math.isfinite(value):
                    found["/".join((*group, key))] = float(value)
    return found


def write_hparams(
    log_dir: Path, trial_id: str, flag_values: Mapping[str, Any], metrics: Mapping[str, float]
) -> None:
    """One HParams session (the flags) with its metrics as step-0 scalars in `log_dir`,
    replacing what an earlier attempt of the same run wrote there."""
    shutil.rmtree(log_dir, ignore_errors=True)
    writer = tf.summary.create_file_writer(os.fspath(log_dir))
    with writer.as_default():
        hp.hparams({name: hparam_value(v) for name, v in flag_values.items()}, trial_id=trial_id)
        for name, value in metrics.items():
            tf.summary.scalar(name, value, step=0)
    writer.close()
