"""One source for each default: a step called from Python computes what the command line
computes, and pipelines.predict explains as the run's Explainer did."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from absl import flags
from PIL import Image

import pipelines.pneumonia as pneumonia_flags
from components.explain.methods import METHODS, method_options
from components.pneumonia import (
    eda,
    evaluator,
    example_gen,
    explainer,
    exporter,
    trainer,
    transform,
    tuner,
)
from components.reporting.figures import overlay
from components.saved_splits import split_examples, split_images
from components.trained_model import load_trained_model
from models.training import float32_copy
from tests.support.runs import predict_into

# Step parameters named differently from their flag.
FLAG_OF_PARAMETER = {
    "use_class_weights": "class_weights",
    "acquisition": "acquisition_augmentation",
    "kind": "tuner",
    "methods": "explain",
    "bootstrap_resamples": "bootstrap",
}
# Parameters that share a flag's name but not its meaning.
NOT_THE_FLAG = {
    (trainer, "tuner"),  # the Tuner's output folder, not the search algorithm
    (tuner, "epochs"),  # a trial's epochs: shorter than the final training by design
}
STEPS = (example_gen, eda, transform, tuner, trainer, evaluator, exporter, explainer)


def flag_defaults() -> dict[str, object]:
    return {
        flag.name: tuple(flag.default) if isinstance(flag.default, list) else flag.default
        for flag in flags.FLAGS.get_flags_for_module(pneumonia_flags)
    }


def test_every_step_default_equals_its_flag_default():
    defaults = flag_defaults()
    compared, different = 0, []
    for step in STEPS:
        for parameter in inspect.signature(step.run).parameters.values():
            name = FLAG_OF_PARAMETER.get(parameter.name, parameter.name)
            if name not in defaults or (step, parameter.name) in NOT_THE_FLAG:
                continue
            if parameter.default is inspect.Parameter.empty:
                continue
            compared += 1
            if parameter.default != defaults[name]:
                different.append(f"{step.__name__}.{parameter.name}={parameter.default!r}")
    assert not different, f"step defaults that differ from the flags: {different}"
    assert compared >= 15  # the comparison found the steps' parameters


def test_the_model_builders_default_to_the_flags():
    from models.cnn import build_cnn

    defaults = flag_defaults()
    normalization = inspect.signature(build_cnn).parameters["normalization"].default
    assert normalization == defaults["normalization"]
    assert set(pneumonia_flags.EXPLAIN_METHODS) == set(METHODS)


def test_predict_draws_the_explainers_integrated_gradients(drawn_pneumonia_run, tmp_path):
    """The same test image: predict's IG overlay equals the one the Explainer's code path
    gives (its recorded baseline and options, on the saved split's pixels)."""
    run_dir = drawn_pneumonia_run.run_dir
    params = explainer_params(run_dir)
    rows = split_examples(run_dir / "example_gen", run_dir / "transform", "test")
    image = split_images(run_dir / "transform", "test", [0]).astype("float32")
    model = float32_copy(load_trained_model(run_dir / "trainer"))
    options = method_options(
        ("integrated_gradients",), run_dir / "transform", params["seed"], params["ig_baseline"]
    )
    expected = overlay(
        image[0],
        METHODS["integrated_gradients"](model, image, **options["integrated_gradients"])[0],
    )
    out = tmp_path / "predict"
    result = predict_into(run_dir, out, "--explain", "integrated_gradients", rows["path"][0])
    assert result.returncode == 0, result.stderr[-2000:]
    (written,) = (out / "integrated_gradients").glob("*.png")
    drawn = np.asarray(Image.open(written).convert("RGB")).astype(int)
    # Same pixels, model and baseline; a grey level of rounding in the colour map at most.
    assert np.abs(drawn - np.asarray(expected).astype(int)).max() <= 2


def explainer_params(run_dir) -> dict:
    import json

    params = json.loads((run_dir / "explainer" / "metadata.json").read_text())["params"]
    if "ig_baseline" not in params:
        pytest.fail("the Explainer records its IG baseline")
    return params
