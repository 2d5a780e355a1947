"""How long `pipelines.predict` takes per image on this CPU: scoring alone and with
Grad-CAM, one image per batch and 32.

    python -m benchmarks.predict --run_dir runs/kaggle [--images 64] [--repeats 3]

Each figure times the Predictor as the command runs it (components/pneumonia/predictor.py:
decode from files, score, overlays, predictions.csv and the page), on the run's own test
images, after one warm-up run; the median of `--repeats` runs, divided by the images.
Model loading is timed apart: the command pays it once per call.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from absl import app, flags

from benchmarks.machine import cpu_name
from components.artifacts import read_json
from components.pneumonia import predictor
from components.trained_model import load_keras_model

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "A finished binary pneumonia run.", required=True)
flags.DEFINE_integer("images", 64, "Test images of the run to score.")
flags.DEFINE_integer("repeats", 3, "Timed runs per setting (median reported).")


def timed_run(paths: list[str], model_path: Path, threshold: float, batch: int, methods) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        predictor.run(
            Path(out),
            model_path=str(model_path),
            paths=paths,
            threshold=threshold,
            threshold_source="benchmark",
            class_names=["NORMAL", "PNEUMONIA"],
            methods=methods,
            batch_size=batch,
        )
        return time.perf_counter() - start


def main(argv: list[str]) -> None:
    run_dir = Path(FLAGS.run_dir)
    model_path = run_dir / "trainer" / "model.keras"
    threshold = read_json(run_dir / "evaluator" / "metrics.json")["threshold"]
    examples = pd.read_csv(run_dir / "example_gen" / "examples.csv")
    paths = examples.loc[examples["split"] == "test", "path"].head(FLAGS.images).tolist()
    start = time.perf_counter()
    model = load_keras_model(model_path)
    load_s = time.perf_counter() - start
    size = int(model.inputs[0].shape[1])
    print(f"CPU: {cpu_name()}; {len(paths)} test images of {run_dir} (model input {size} px)")
    print(f"model load: {load_s * 1000:.0f} ms (once per command)")
    print(f"{'batch':>5}  {'explain':8}  {'ms/image':>8}  {'images/s':>8}")
    for methods in ((), ("gradcam",)):
        for batch in (1, 32):
            timed_run(paths[:batch], model_path, threshold, batch, methods)  # warm-up
            seconds = statistics.median(
                timed_run(paths, model_path, threshold, batch, methods)
                for _ in range(FLAGS.repeats)
            )
            per_image = 1000 * seconds / len(paths)
            print(
                f"{batch:5d}  {','.join(methods) or 'none':8}  {per_image:8.1f}  "
                f"{1000 / per_image:8.1f}"
            )


if __name__ == "__main__":
    app.run(main)
