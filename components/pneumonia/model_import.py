"""ModelImport: brings a saved Keras model into a run folder in the Trainer's place.

`python -m pipelines.evaluate` uses it so that the Evaluator reads `trainer/model.keras`
exactly as after training; the model must load in Keras safe mode.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import keras

from components.artifacts import atomic_path
from components.errors import DataError
from components.trained_model import load_keras_model


def load_model_checked(model_path: Path) -> keras.Model:
    """The model at `model_path`, or a DataError naming the file and the problem."""
    if not model_path.is_file():
        raise DataError(f"--model {model_path} does not exist")
    try:
        model = load_keras_model(model_path)
    except Exception as error:  # Keras raises ValueError/OSError/zipfile errors alike
        raise DataError(
            f"--model {model_path} is not a loadable Keras model ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]})"
        ) from error
    problem = shape_problem(model)
    if problem:
        raise DataError(f"--model {model_path} {problem}")
    return model


def shape_problem(model: keras.Model) -> str | None:
    """Why the pipelines cannot feed or read `model`, or None. They feed one batch of
    grayscale images of a fixed size, (n, s, s, 1) (components/images.py decodes every
    image so), and read one sigmoid score, three class scores or (a multi-label model)
    one sigmoid score per finding."""
    shapes = [tuple(tensor.shape) for tensor in model.inputs]
    if len(shapes) != 1 or len(shapes[0]) != 4:
        return f"takes inputs {shapes}; the pipelines feed one batch of images (n, s, s, 1)"
    _, height, width, channels = shapes[0]
    if height is None or width is None:
        return (
            f"takes images of any size {shapes[0]}; the pipelines resize every image to the "
            "size the model states: save it with a fixed input, e.g. keras.Input((224, 224, 1))"
        )
    if height != width:
        return f"takes {height}x{width} images; the pipelines make square ones"
    if channels != 1:
        return (
            f"takes {channels}-channel images ({height}x{width}x{channels}); the pipelines "
            f"feed grayscale ones ({height}x{width}x1): give it a one-channel input (models/ "
            "repeats gray into RGB inside the model for the ImageNet backbones)"
        )
    outputs = [tuple(tensor.shape) for tensor in model.outputs]
    per_finding = getattr(model.layers[-1], "activation", None) is keras.activations.sigmoid
    if len(outputs) != 1 or not (outputs[0][-1] in (1, 3) or per_finding):
        return (
            f"has outputs {outputs}; the pipelines read one sigmoid score (n, 1), three "
            "class scores (n, 3) or one sigmoid score per finding (n, findings)"
        )
    return None


def run(out_dir: Path, *, model_path: str) -> dict[str, Any]:
    """Copies a checked model file to `<out_dir>/model.keras` (no TensorBoard output)."""
    model = load_model_checked(Path(model_path))
    with atomic_path(out_dir / "model.keras") as tmp:
        shutil.copyfile(model_path, tmp)
    return {"model": "model.keras", "parameters": int(model.count_params())}
