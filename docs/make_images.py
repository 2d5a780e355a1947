"""Makes the README's pictures (docs/images/*.png) from finished real-data runs.

    python docs/make_images.py --run_dir RUN --heart_run_dir HEART_RUN [--out docs/images]

RUN is a finished binary `python -m pipelines.pneumonia` run on the Kaggle data; it is
only read. Its Explainer step is run again into a temporary folder with every explanation
method (a default run explains with Grad-CAM and Integrated Gradients only), from the
run's own saved splits, model and threshold; HEART_RUN is a finished `python -m
pipelines.heart` run. The pictures:

- explanation_panel.png: one test image of each kind (true/false positive/negative
  stacked), original | every method, from the Explainer's panels;
- evaluation.png: the run's ROC curves beside its test confusion matrix;
- explainer_report.png: the top of that Explainer's report.html as headless Chromium
  renders it (Debian's chromium);
- nam_shapes.png: the heart run's NAM shape functions with the data density.

Each PNG is reduced (palette, then size) until it is at most 200 KB, and all of them
together at most 1.5 MB; the script prints each size and exits 1 if a limit is broken.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script: make the project importable

from benchmarks.render_report import CHROMIUM_FLAGS, find_chromium  # noqa: E402

MAX_BYTES = 200_000
MAX_TOTAL = 1_500_000
ALL_METHODS = ("gradcam", "gradcam_plus_plus", "integrated_gradients", "lime", "shap", "occlusion")
OUTCOMES = ("true_positive", "false_positive", "false_negative", "true_negative")


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def save_small(image: Image.Image, path: Path, width: int) -> int:
    """`image` at most `width` wide, as a 256-colour PNG, shrunk until <= MAX_BYTES."""
    image = image.convert("RGB")
    while True:
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        data = png_bytes(image.quantize(colors=256, method=Image.Quantize.MEDIANCUT))
        if len(data) <= MAX_BYTES or width < 200:
            break
        width = int(image.width * 0.85)
    path.write_bytes(data)
    return len(data)


def side_by_side(paths: list[Path]) -> Image.Image:
    images = [Image.open(p).convert("RGB") for p in paths]
    height = max(i.height for i in images)
    canvas = Image.new("RGB", (sum(i.width for i in images), height), "white")
    x = 0
    for image in images:
        canvas.paste(image, (x, (height - image.height) // 2))
        x += image.width
    return canvas


def stacked(paths: list[Path]) -> Image.Image:
    images = [Image.open(p).convert("RGB") for p in paths]
    canvas = Image.new(
        "RGB", (max(i.width for i in images), sum(i.height for i in images)), "white"
    )
    y = 0
    for image in images:
        canvas.paste(image, (0, y))
        y += image.height
    return canvas


def explain_again(run_dir: Path, out_dir: Path, methods: tuple[str, ...]) -> Path:
    """The run's Explainer step with `methods`, into `out_dir` (the run is only read)."""
    from components.pneumonia import explainer

    explainer.run(
        out_dir,
        examples=run_dir / "example_gen",
        transform=run_dir / "transform",
        trainer=run_dir / "trainer",
        evaluator=run_dir / "evaluator",
        methods=methods,
        seed=42,
    )
    return out_dir


def screenshot(page: Path, png: Path, work: Path, size: tuple[int, int] = (1280, 1500)) -> None:
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("chromium not found: apt-get update && apt-get install -y chromium")
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={work / 'profile'}",
            f"--screenshot={png}",
            f"--window-size={size[0]},{size[1]}",
            "--virtual-time-budget=5000",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", type=Path, required=True, help="finished pneumonia run")
    parser.add_argument("--heart_run_dir", type=Path, required=True, help="finished heart run")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--methods", default=",".join(ALL_METHODS))
    args = parser.parse_args(argv)
    metrics = args.run_dir / "evaluator" / "metrics.json"
    nam = args.heart_run_dir / "explainer" / "nam_shape_functions.png"
    for needed in (metrics, nam):
        if not needed.is_file():
            print(f"{needed}: not found (a finished run is needed)")
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    work = Path(tempfile.mkdtemp(prefix="readme-images-"))
    try:
        explained = explain_again(args.run_dir, work / "explainer", tuple(args.methods.split(",")))
        panels = [next(iter(sorted((explained / "panels").glob(f"{o}_*.png")))) for o in OUTCOMES]
        sizes["explanation_panel.png"] = save_small(
            stacked(panels), args.out / "explanation_panel.png", 1100
        )
        evaluator = args.run_dir / "evaluator"
        sizes["evaluation.png"] = save_small(
            side_by_side([evaluator / "roc.png", evaluator / "confusion_matrix_test.png"]),
            args.out / "evaluation.png",
            900,
        )
        shot = work / "report.png"
        screenshot(explained / "report.html", shot, work)
        sizes["explainer_report.png"] = save_small(
            Image.open(shot), args.out / "explainer_report.png", 900
        )
        sizes["nam_shapes.png"] = save_small(Image.open(nam), args.out / "nam_shapes.png", 1000)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, size in sizes.items():
        print(f"{args.out / name}: {size / 1000:.0f} KB")
    total = sum(sizes.values())
    print(
        f"total {total / 1000:.0f} KB (limits: {MAX_BYTES // 1000} KB each, {MAX_TOTAL // 1000} KB)"
    )
    return 0 if max(sizes.values()) <= MAX_BYTES and total <= MAX_TOTAL else 1


if __name__ == "__main__":
    sys.exit(main())
