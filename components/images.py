"""Image files -> model input, the one way every part of the project reads them.

The Transform (training and evaluation), `pipelines.predict` and the exported serving
model all decode through `decode_image_bytes` / `decode_file`, so a score means the same
pixels wherever it was computed: decode, one grayscale channel, resize with antialiasing,
round to uint8 (h, w, 1).

Formats: what TensorFlow decodes (JPEG, PNG, BMP, GIF; 8 or 16 bit; gray, RGB, RGBA,
palette) and DICOM through pydicom. DICOM pixels go through the standard display chain
(PS3.3 C.11): modality LUT or rescale slope/intercept, then the VOI LUT or window, then
MONOCHROME1 inverted so that dense tissue is bright as in every other format. The serving
model takes JPEG and PNG only: pydicom is Python, not a TensorFlow op.

`check_image` says why a file cannot be used before anything is decoded, so ExampleGen
and predict can skip it with a reason instead of failing mid-way.
"""

from __future__ import annotations

import errno
import io
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf
from PIL import Image

from datasets.chest_xray_pneumonia import file_names

# PIL's decompression-bomb limit (about 89 megapixels); a 6000 x 6000 radiograph is 36.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
# Formats TensorFlow's decode_image reads (MPO: multi-picture JPEGs from cameras).
DECODABLE_FORMATS = {"JPEG", "MPO", "PNG", "BMP", "GIF"}
# TensorFlow's BMP decoder reads uncompressed 8-bit gray, 24-bit and 32-bit pixels: it
# takes palette indices for gray levels (a colour or inverted palette decodes silently
# wrong) and cannot read 1-bit images.
BMP_MODES = {"L", "RGB", "RGBA"}
BMP_COMPRESSIONS = {0, 3}  # raw, bitfields
DICOM_PHOTOMETRICS = {"MONOCHROME1", "MONOCHROME2", "RGB"}
# What to install for the compressed transfer syntaxes pydicom decodes through plugins.
DICOM_DECODER_HINTS = {
    "JPEG 2000": "pip install pylibjpeg pylibjpeg-openjpeg",
    "JPEG-LS": "pip install pylibjpeg pylibjpeg-libjpeg",
    "JPEG": "pip install pylibjpeg pylibjpeg-libjpeg",
    "RLE": "pip install pylibjpeg pylibjpeg-rle",
}


def is_dicom_bytes(head: bytes) -> bool:
    """DICOM Part 10 files carry "DICM" after a 128-byte preamble."""
    return head[128:132] == b"DICM"


def is_dicom_file(path: Path) -> bool:
    """Whether the file starts like a DICOM Part 10 file, whatever its name; False when it cannot be
    read."""
    try:
        with open(path, "rb") as handle:
            return is_dicom_bytes(handle.read(132))
    except OSError:
        return False


def image_files_below(folder: Path) -> list[Path]:
    """Every file at any depth below `folder` that may be an image (an image suffix, or the
    DICOM marker, which many DICOM files carry without a suffix), sorted; hidden files
    (.DS_Store) left out. Cheap: names and four bytes, nothing decoded (`check_image` says
    which of them cannot be used). Folder names mean nothing here, class folders
    included, and symbolic links to folders are not followed (no loops)."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not file_names.is_hidden(path.name)
        and (file_names.has_image_suffix(path.name) or is_dicom_file(path))
    )


def too_large(width: int, height: int) -> str:
    """The reason `check_image` gives for an image over `MAX_PIXELS` (Pillow's decompression bomb
    limit): its size in megapixels and the limit."""
    return (
        f"image too large ({width} x {height} = {width * height / 1e6:.0f} megapixels; "
        f"limit {MAX_PIXELS / 1e6:.0f})"
    )


def check_image(path: Path) -> str | None:
    """Why `path` is not a usable image, or None when it decodes.

    PIL's draft mode decodes JPEGs at reduced scale, so checking thousands of full-size
    radiographs takes seconds; truncated and corrupt files still fail on load(). The
    checks mirror what the decoders below can read faithfully.
    """
    try:
        size = os.stat(path).st_size  # follows symbolic links
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symbolic-link loop"
        if path.is_symlink():
            return f"broken symbolic link (its target {os.readlink(path)} does not exist)"
        return f"unreadable file ({error.strerror or error})"
    if size == 0:
        return "empty file"
    if is_dicom_file(path):
        return check_dicom(path)
    try:
        with warnings.catch_warnings():
            # Above MAX_PIXELS PIL only warns (it raises at twice that): treat both alike.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return _raster_problem(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        return f"image too large ({str(error).split(',')[0]})"
    except OSError as error:  # PIL raises OSError subclasses for unreadable data
        return f"unreadable image ({error})"
    except (ValueError, SyntaxError, EOFError) as error:  # corrupt headers in some plugins
        return f"unreadable image ({error})"


def stored_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of an image file as stored, from its header only (the shift
    report's per-folder sizes); None when the header cannot be read."""
    try:
        if is_dicom_file(path):
            import pydicom

            ds = pydicom.dcmread(path, stop_before_pixels=True)
            return int(ds.Columns), int(ds.Rows)
        with Image.open(path) as image:
            return image.size
    except Exception:  # any unreadable header: the size is only reported
        return None


def _raster_problem(image: Image.Image) -> str | None:
    if image.format not in DECODABLE_FORMATS:
        return f"unsupported image format {image.format}"
    width, height = image.size
    if width * height > MAX_PIXELS:
        return too_large(width, height)
    if image.format == "BMP" and image.mode not in BMP_MODES:
        return (
            f"BMP with {image.mode} pixels (a palette or 1 bit per pixel): "
            "TensorFlow cannot decode it faithfully; convert it to PNG"
        )
    if image.format == "BMP" and image.info.get("compression", 0) not in BMP_COMPRESSIONS:
        return (
            f"BMP with compression {image.info.get('compression')}: "
            "TensorFlow reads uncompressed BMPs only; convert it to PNG"
        )
    if image.format in {"JPEG", "MPO"}:
        image.draft("L", (64, 64))
    image.load()
    return None


def check_dicom(path: Path) -> str | None:
    """Why a DICOM file cannot be used (one line), or None when its pixels decode."""
    try:
        dicom_pixels(path.read_bytes())
    except DicomError as error:
        return str(error)
    return None


class DicomError(ValueError):
    """A DICOM file this project cannot turn into an image, with the reason."""


def _read_dicom(raw: bytes):
    import pydicom

    try:
        return pydicom.dcmread(io.BytesIO(raw))
    except Exception as error:  # pydicom raises InvalidDicomError, EOFError, KeyError...
        raise DicomError(f"unreadable DICOM ({type(error).__name__}: {error})") from error


def _dicom_header_problem(ds) -> str | None:
    if "PixelData" not in ds:
        return "DICOM without pixel data (a report or structured document, not an image)"
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        return (
            f"multi-frame DICOM ({frames} frames): one radiograph per file is expected; "
            "export the frame you want as its own file"
        )
    bits = int(ds.get("BitsAllocated", 0))
    if bits not in (8, 16):
        return f"DICOM with {bits}-bit pixels (8 or 16 bits are read)"
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in DICOM_PHOTOMETRICS:
        return (
            f"DICOM with photometric interpretation {photometric or 'missing'} "
            f"({', '.join(sorted(DICOM_PHOTOMETRICS))} are read)"
        )
    rows, columns = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    if rows * columns > MAX_PIXELS:
        return too_large(columns, rows)
    return None


def _undecodable_syntax(ds, error: Exception) -> str:
    syntax = ds.file_meta.get("TransferSyntaxUID")
    name = getattr(syntax, "name", str(syntax))
    hint = next(
        (install for key, install in DICOM_DECODER_HINTS.items() if key in name),
        "install a pydicom pixel-data plugin for it (pylibjpeg or GDCM)",
    )
    return (
        f"DICOM compressed as {name} ({syntax}), which no installed pydicom decoder reads: "
        f"{hint} ({type(error).__name__})"
    )


def _display_range(ds) -> tuple[float, float]:
    """The value range of the stored pixels after the modality LUT or rescale, the same
    range pydicom's windowing maps onto (PS3.3 C.11.2.1.2): its ends are black and white."""
    bits = int(ds.get("BitsStored", ds.BitsAllocated))
    if ds.get("ModalityLUTSequence"):
        return 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    if int(ds.get("PixelRepresentation", 0)) == 0:
        low, high = 0.0, float(2**bits - 1)
    else:
        low, high = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    slope, intercept = float(ds.get("RescaleSlope", 1.0)), float(ds.get("RescaleIntercept", 0.0))
    return sorted((low * slope + intercept, high * slope + intercept))  # type: ignore[return-value]


def dicom_pixels(raw: bytes) -> np.ndarray:
    """A single-frame DICOM's display pixels: (h, w, 3) float32 in [0, 1], bright = dense.

    pydicom applies the modality LUT (or rescale slope/intercept) and the VOI LUT (or
    window); what remains by hand is mapping its output range onto [0, 1] and inverting
    MONOCHROME1, which pydicom leaves to the viewer.
    """
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = _read_dicom(raw)
    problem = _dicom_header_problem(ds)
    if problem:
        raise DicomError(problem)
    try:
        stored = ds.pixel_array
    except Exception as error:  # no handler for a compressed syntax, or corrupt data
        if ds.file_meta.get("TransferSyntaxUID") and ds.file_meta.TransferSyntaxUID.is_compressed:
            raise DicomError(_undecodable_syntax(ds, error)) from error
        raise DicomError(
            f"DICOM pixel data unreadable ({type(error).__name__}: {error})"
        ) from error
    photometric = str(ds.PhotometricInterpretation)
    if photometric == "RGB":
        return (np.asarray(stored, np.float32) / float(2 ** int(ds.BitsStored) - 1)).clip(0, 1)
    values = apply_modality_lut(stored, ds)
    low, high = _display_range(ds)
    if ds.get("VOILUTSequence"):
        values = apply_voi_lut(values, ds, prefer_lut=True)
        low, high = 0.0, float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        values = apply_voi_lut(values, ds)  # output spans the same range as its input
    gray = ((np.asarray(values, np.float64) - low) / max(high - low, 1e-12)).clip(0.0, 1.0)
    if photometric == "MONOCHROME1":
        gray = 1.0 - gray
    return np.repeat(gray.astype(np.float32)[..., None], 3, axis=-1)


def _decode_full(raw: tf.Tensor) -> tf.Tensor:
    return tf.io.decode_image(raw, channels=3, dtype=tf.float32, expand_animations=False)


def _decode_jpeg_scaled(raw: tf.Tensor, image_size: int) -> tf.Tensor:
    """A JPEG decoded at 1/2, 1/4 or 1/8 scale when it stays at least twice `image_size`.

    libjpeg's DCT scaling skips most of the work and memory for large radiographs: a
    6000 x 6000 image becomes 750 x 750 before resizing instead of 432 MB of float pixels.
    """
    shape = tf.io.extract_jpeg_shape(raw)
    short_side = tf.minimum(shape[0], shape[1])

    def decode(ratio: int) -> Callable[[], tf.Tensor]:
        return lambda: tf.image.convert_image_dtype(
            tf.io.decode_jpeg(raw, channels=3, ratio=ratio), tf.float32
        )

    return tf.case(
        [(short_side >= 2 * image_size * ratio, decode(ratio)) for ratio in (8, 4, 2)],
        default=decode(1),
        exclusive=False,
    )


def to_model_pixels(rgb: tf.Tensor, image_size: int) -> tf.Tensor:
    """(h, w, 3) float in [0, 1] -> (image_size, image_size, 1) uint8 grayscale.

    Antialiasing keeps full-resolution radiographs from aliasing when shrunk tenfold.
    """
    image = tf.image.rgb_to_grayscale(rgb)
    image = tf.image.resize(image, (image_size, image_size), antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 1.0) * 255.0), tf.uint8)


def decode_image_bytes(raw: tf.Tensor, image_size: int) -> tf.Tensor:
    """Encoded JPEG/PNG/BMP/GIF bytes -> (image_size, image_size, 1) uint8; graph-only
    (TensorFlow ops), so the serving model carries it.

    decode_image with channels=3 expands grayscale and palette images and drops alpha;
    float32 output scales 8- and 16-bit images alike to [0, 1]. Large JPEGs are decoded
    at a reduced scale first (never below twice the target size).
    """
    rgb = tf.cond(
        tf.io.is_jpeg(raw), lambda: _decode_jpeg_scaled(raw, image_size), lambda: _decode_full(raw)
    )
    return to_model_pixels(rgb, image_size)


def _dicom_rgb(raw: tf.Tensor) -> tf.Tensor:
    def decode(data: bytes | np.ndarray) -> np.ndarray:
        # Graph mode passes bytes; eager mode a 0-d object array holding them.
        raw_bytes = data if isinstance(data, bytes) else data.item()
        try:
            return dicom_pixels(raw_bytes)
        except DicomError as error:
            # tf.data's ignore_errors drops the file; check_image gives the reason.
            raise ValueError(str(error)) from error

    rgb = tf.numpy_function(decode, [raw], tf.float32, stateful=False)
    return tf.ensure_shape(rgb, [None, None, 3])


def decode_file(path: tf.Tensor, image_size: int) -> tf.Tensor:
    """One image file (any format above, DICOM included) -> (size, size, 1) uint8."""
    raw = tf.io.read_file(path)
    # substr needs pos <= length: a file shorter than the preamble is no DICOM.
    preamble = tf.minimum(tf.strings.length(raw), 128)
    is_dicom = tf.equal(tf.strings.substr(raw, preamble, 4), b"DICM")
    return tf.cond(
        is_dicom,
        lambda: to_model_pixels(_dicom_rgb(raw), image_size),
        lambda: decode_image_bytes(raw, image_size),
    )


def decode_problem(path: str, image_size: int) -> str:
    """Why `path` does not decode (the first line of the decoder's error)."""
    try:
        decode_file(tf.constant(path), image_size)
    except (tf.errors.OpError, ValueError) as error:
        message = getattr(error, "message", str(error))
        return message.strip().splitlines()[0][:300]
    return "dropped while decoding"


def decoded_files(paths: list[str], image_size: int) -> tf.data.Dataset:
    """(image uint8 (size, size, 1), position in `paths`) for every file that decodes,
    in order, decoded in parallel; the positions missing are the files that did not."""
    ds = tf.data.Dataset.from_tensor_slices((paths, np.arange(len(paths), dtype=np.int64)))
    ds = ds.map(
        lambda path, i: (decode_file(path, image_size), i),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return ds.ignore_errors()
