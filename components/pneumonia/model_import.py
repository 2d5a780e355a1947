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
from components.saved_model import load_keras_model


def load_model_checked(model_path: Path) -> keras.Model:
    """The model at `model_path`, or a DataError naming the file and the problem."""
    if not model_path.is_file():
        raise DataError(f"--model {model_path} does not exist")
    try:
        return load_keras_model(model_path)
    except Exception as error:  # Keras raises ValueError/OSError/zipfile errors alike
        raise DataError(
            f"--model {model_path} is not a loadable Keras model ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]})"
        ) from error


def run(out_dir: Path, *, model_path: str, tensorboard_dir: Path | None = None) -> dict[str, Any]:
    """Copies a checked model file to `<out_dir>/model.keras` (no TensorBoard output)."""
    model = load_model_checked(Path(model_path))
    with atomic_path(out_dir / "model.keras") as tmp:
        shutil.copyfile(model_path, tmp)
    return {"model": "model.keras", "parameters": int(model.count_params())}
