"""Every --precision policy, forced, on whichever CPU runs the tests.

`--precision auto` takes float32 on CPUs and a mixed policy on GPUs, and a user may
force either mixed policy anywhere, so no run of the suite would otherwise train under
one. bfloat16 and float16 both run on any x86 CPU (slowly), so the runs here are tiny: 32 px,
a few dozen drawn images, one epoch. GPU-only branches are checked with a faked device list.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from benchmarks.small_folders import make_drawn_folder
from components.augmentation import augmentation_layers
from components.explain.methods import METHODS
from models import distributed_fit, training
from models.cnn import build_cnn
from models.training import compute_precision, float32_copy, is_float32, precision_policy
from tests.support.runs import predict_into, run_module

MIXED_POLICIES = ("mixed_bfloat16", "mixed_float16")
ALL_METHODS = ",".join(METHODS)


@pytest.fixture(scope="module")
def drawn_data(tmp_path_factory) -> Path:
    return make_drawn_folder(tmp_path_factory.mktemp("drawn") / "data", 8, 2, ("train", "test"))


@pytest.fixture(scope="module", params=MIXED_POLICIES)
def mixed_run(request, drawn_data, tmp_path_factory) -> tuple[str, Path]:
    """A default pipeline run (acquisition augmentation on) under a forced mixed policy,
    with every explanation method and the sanity checks."""
    run_dir = tmp_path_factory.mktemp(request.param) / "run"
    result = run_module(
        "pipelines.pneumonia",
        "--data_dir",
        str(drawn_data),
        "--precision",
        request.param,
        "--epochs",
        "1",
        "--image_size",
        "32",
        "--bootstrap",
        "20",
        "--explain",
        ALL_METHODS,
        "--sanity_checks",
        "--sanity_images",
        "4",
        "--sanity_draws",
        "1",
        "--quiet",
        "--run_dir",
        str(run_dir),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return request.param, run_dir


def test_a_mixed_precision_run_trains_evaluates_exports_and_explains(mixed_run):
    policy, run_dir = mixed_run
    trainer = json.loads((run_dir / "trainer" / "metadata.json").read_text())
    assert trainer["outputs"]["precision"] == policy
    history = pd.read_csv(run_dir / "trainer" / "history.csv")
    assert np.isfinite(history["loss"]).all() and np.isfinite(history["val_loss"]).all()
    predictions = pd.read_csv(run_dir / "evaluator" / "predictions.csv")
    assert np.isfinite(predictions["score"]).all()
    assert (run_dir / "export" / "serving" / "saved_model.pb").is_file()
    for method in METHODS:
        assert list((run_dir / "explainer" / method).glob("*.png")), method
    sanity = json.loads((run_dir / "explainer" / "sanity.json").read_text())
    assert set(sanity["summary"]) >= {"gradcam", "integrated_gradients"}


def test_the_saved_layers_keep_the_mixed_policy_and_its_float32_head(mixed_run):
    policy, run_dir = mixed_run
    from components.trained_model import load_trained_model

    model = load_trained_model(run_dir / "trainer")
    policies = {layer.name: layer.dtype_policy.name for layer in model.layers}
    assert policies["prediction"] == "float32" and policies["standardize"] == "float32"
    assert policy in policies.values()
    assert not is_float32(model)


def test_a_float32_process_scores_the_mixed_model_as_the_run_did(mixed_run, tmp_path):
    """predict (a new process, float32 global policy) and the serving export give the
    Evaluator's scores; the float32 copy the explanations use differs by < 1e-2."""
    _, run_dir = mixed_run
    test = pd.read_csv(run_dir / "evaluator" / "predictions.csv").query("split == 'test'")
    out = tmp_path / "predict"
    result = predict_into(run_dir, out, "--explain=", *test["path"])
    assert result.returncode == 0, result.stderr[-3000:]
    predicted = pd.read_csv(out / "predictions.csv").merge(test, on="path")
    assert len(predicted) == len(test)
    np.testing.assert_allclose(predicted["score_x"], predicted["score_y"], atol=1e-2)

    serving = tf.saved_model.load(str(run_dir / "export" / "serving"))
    files = [Path(path).read_bytes() for path in test["path"]]
    served = serving.signatures["serving_default"](images=tf.constant(files))
    np.testing.assert_allclose(served["score"].numpy(), test["score"], atol=1e-2)

    from components.saved_splits import split_images
    from components.trained_model import load_trained_model

    model = load_trained_model(run_dir / "trainer")
    images = split_images(run_dir / "transform", "test").astype("float32")
    copy = float32_copy(model)
    assert is_float32(copy)
    np.testing.assert_allclose(
        copy.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-2
    )


@pytest.mark.parametrize("policy", MIXED_POLICIES)
def test_the_heart_pipeline_trains_its_keras_models_under_a_mixed_policy(policy, tmp_path):
    run_dir = tmp_path / "run"
    result = run_module(
        "pipelines.heart",
        "--precision",
        policy,
        "--epochs",
        "2",
        "--seed",
        "7",
        "--quiet",
        "--run_dir",
        str(run_dir),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
    for kind in ("mlp", "nam"):
        assert np.isfinite(metrics[kind]["test"]["auc"]), kind


@pytest.mark.parametrize("policy", MIXED_POLICIES)
def test_augmentation_computes_in_float32_under_a_global_mixed_policy(policy):
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 1)).astype("float32")
    with compute_precision(policy):
        layers = augmentation_layers(0.05, 0.1, 0.1, 0.1, True, seed=0, acquisition=1.0)
        out = layers(images, training=True)
        assert keras.config.dtype_policy().name == policy
    assert keras.config.dtype_policy().name == "float32"  # restored on leaving
    assert out.dtype == tf.float32
    assert np.isfinite(out.numpy()).all()


def _tiny_fp16_model() -> keras.Model:
    with compute_precision("mixed_float16"):
        model = build_cnn(16, 1, 2, filters=(4, 8), dropout=0.0, normalization="standardize")
        training.compile_for_training(model, 2, 1e-3, "cross_entropy")
    return model


def _tiny_data(seed: int = 0) -> tf.data.Dataset:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (16, 16, 16, 1)).astype("float32")
    y = (np.arange(16) % 2).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


def test_the_training_loop_applies_keras_loss_scaling_under_float16():
    """Compiling a model built under mixed_float16 wraps Adam in LossScaleOptimizer, and
    models/distributed_fit.fit goes through it: a scale that overflows float16 gradients
    makes the step a no-op and halves the scale; a normal scale trains without NaN."""
    model = _tiny_fp16_model()
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    data = _tiny_data()
    strategy = tf.distribute.get_strategy()
    distributed_fit.fit(model, data, data, epochs=1, strategy=strategy, verbose=0)
    scale = float(model.optimizer.dynamic_scale)
    weights = [np.asarray(w).copy() for w in model.trainable_weights]
    assert all(np.isfinite(w).all() for w in weights)
    assert int(model.optimizer.iterations) == 2

    model.optimizer.dynamic_scale.assign(2.0**60)  # every float16 gradient overflows
    distributed_fit.fit(model, data, data, epochs=1, strategy=strategy, verbose=0)
    assert float(model.optimizer.dynamic_scale) == 2.0**58  # halved at each of 2 steps
    for before, after in zip(weights, model.trainable_weights):
        np.testing.assert_array_equal(before, np.asarray(after))  # overflowing steps skipped
    assert scale == 2.0**15  # untouched by the normal steps (it grows after 2,000)


def test_float32_copy_keeps_the_weights_and_leaves_float32_models_alone():
    model = _tiny_fp16_model()
    copy = float32_copy(model)
    assert is_float32(copy) and not is_float32(model)
    assert [w.path for w in copy.weights] == [w.path for w in model.weights]
    images = np.random.default_rng(1).uniform(0, 255, (4, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(copy(images), model(images), atol=1e-2)
    assert float32_copy(copy) is copy


class _FakeGpu:
    name, device_type = "/physical_device:GPU:0", "GPU"


def _fake_gpus(monkeypatch, capability: tuple[int, int] | None) -> None:
    devices = [] if capability is None else [_FakeGpu()]
    real = tf.config.list_physical_devices
    monkeypatch.setattr(
        tf.config,
        "list_physical_devices",
        lambda kind=None: devices if kind == "GPU" else real(kind),
    )
    monkeypatch.setattr(
        tf.config.experimental,
        "get_device_details",
        lambda device: {"compute_capability": capability},
    )


@pytest.mark.parametrize(
    ("capability", "expected"),
    [
        ((8, 0), "mixed_bfloat16"),  # Ampere and later
        ((7, 5), "mixed_float16"),  # Turing: no bfloat16 units
        # Any CPU, AMX or not: bf16 cost development-site AUC (docs/benchmarks.md).
        (None, "float32"),
    ],
)
def test_auto_precision_by_device(monkeypatch, capability, expected):
    _fake_gpus(monkeypatch, capability)
    assert precision_policy("auto") == expected
    for forced in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert precision_policy(forced) == forced
    with pytest.raises(ValueError):
        precision_policy("float8")


def test_op_determinism_is_on_for_cpus_and_off_for_gpus(monkeypatch):
    from components.pneumonia import trainer

    calls: list[bool] = []
    monkeypatch.setattr(tf.config.experimental, "enable_op_determinism", lambda: calls.append(True))
    _fake_gpus(monkeypatch, (8, 0))
    assert trainer.use_op_determinism() is False and calls == []
    _fake_gpus(monkeypatch, None)
    assert trainer.use_op_determinism() is True and calls == [True]


def test_mirrored_takes_every_gpu_and_splits_the_cpu_only_without_one(monkeypatch):
    from components import distribution

    made: list[tuple] = []
    monkeypatch.setattr(
        tf.distribute, "MirroredStrategy", lambda *args, **kwargs: made.append((args, kwargs))
    )
    monkeypatch.setattr(
        tf.config,
        "set_logical_device_configuration",
        lambda *args: pytest.fail("a GPU machine must not split its CPU"),
    )
    _fake_gpus(monkeypatch, (8, 0))
    distribution._mirrored(cpu_replicas=2)
    # No device list: MirroredStrategy takes every visible GPU with NCCL all-reduce.
    assert made == [((), {})]


def test_the_gpu_recipe_trains_and_explains_at_a_tiny_size():
    """docs/usage.md's GPU configuration (a from-scratch DenseNet-121, mixed_float16 on
    GPUs before Ampere) on the CPU at 32 px: one step of the training loop with loss
    scaling, finite scores, and Grad-CAM through the nested backbone on the float32 copy."""
    from components.explain.gradcam import grad_cam
    from models import build_model

    with compute_precision("mixed_float16"):
        model = build_model("densenet121", 32, 2, weights="none")
        training.compile_for_training(model, 2, 1e-3, "cross_entropy")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 255, (8, 32, 32, 1)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((images, (np.arange(8) % 2).astype("float32")))
    data = data.batch(8)
    distributed_fit.fit(
        model, data, data, epochs=1, strategy=tf.distribute.get_strategy(), verbose=0
    )
    # The one step was either applied, or skipped for overflowing float16 with the loss
    # scale halved (what LossScaleOptimizer does; DenseNet's first step often overflows).
    halvings = np.log2(2.0**15 / float(model.optimizer.dynamic_scale))
    assert int(model.optimizer.iterations) + halvings == 1
    assert all(np.isfinite(np.asarray(w)).all() for w in model.trainable_weights)
    scores = model.predict(images, verbose=0)
    assert np.isfinite(scores).all()
    maps = grad_cam(float32_copy(model), images[:2])
    assert maps.shape == (2, 32, 32) and np.isfinite(maps).all()
